"""vision-detection: COCO JSON or YOLO txt folders -> an object detector, scored by COCO mAP.

Images are letterboxed (longer side to `data.image_size`, padded right/bottom) so boxes only scale,
and predictions map back to the original pixels exactly. The default `centernet-tiny` is a small
anchor-free detector (a class heatmap at stride 4, CenterNet; box sides regressed with GIoU over each
object's centre region, TTFNet) that learns from scratch on a CPU in minutes, where two-stage
detectors need far longer. The torchvision detectors are there by name for real work.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from dlkit import console
from dlkit.config import opt
from dlkit.data.boxes import (
    PAD,
    BoxReport,
    DetectionSet,
    InputImages,
    input_paths,
    read_boxes,
    write_prediction_files,
)
from dlkit.data.images import check_bad_fraction
from dlkit.data.splits import random_split
from dlkit.errors import UserError
from dlkit.modeling import activation
from dlkit.recipe import Finding, Recipe, RecipeData

TORCHVISION_MODELS = ("fasterrcnn_mobilenet_v3_large_320_fpn", "fasterrcnn_resnet50_fpn_v2",
                      "retinanet_resnet50_fpn_v2", "fcos_resnet50_fpn", "ssdlite320_mobilenet_v3_large")
MODELS = ("centernet-tiny", *TORCHVISION_MODELS)


# --- the default model ----------------------------------------------------------------------------
def _conv(c_in: int, c_out: int, act: str, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out),
                         activation(act))


class _Stage(nn.Module):
    """Halve the resolution, then one residual block."""

    def __init__(self, c_in: int, c_out: int, act: str):
        super().__init__()
        self.down = _conv(c_in, c_out, act, stride=2)
        self.block = nn.Sequential(_conv(c_out, c_out, act), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
                                   nn.BatchNorm2d(c_out))
        self.act = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(x)
        return self.act(x + self.block(x))


class CenterNet(nn.Module):
    """Tiny anchor-free detector with torchvision's calling convention.

    `model(images, targets)` in train mode returns a dict of losses; `model(images)` in eval mode
    returns one {'boxes' (xyxy), 'scores', 'labels' (1..K)} per image, like torchvision detectors.
    A residual backbone (strides 2-32) feeds a top-down neck at stride 4; each cell scores every
    class (focal loss on Gaussian peaks at box centres) and regresses its distances to the box sides.
    """

    stride = 4
    box_scale = 16.0  # pixels per unit of the side-distance head

    def __init__(self, num_classes: int, width: int = 16, act: str = "relu", dropout: float = 0.0,
                 max_detections: int = 100):
        super().__init__()
        chans = [width, 2 * width, 4 * width, 8 * width, 8 * width]
        neck = chans[1]
        self.backbone = nn.ModuleList([_conv(3, chans[0], act, stride=2)]
                                      + [_Stage(a, b, act) for a, b in zip(chans, chans[1:])])
        self.lateral = nn.ModuleList(nn.Conv2d(c, neck, 1) for c in chans[1:])
        self.smooth = nn.Sequential(_conv(neck, neck, act), nn.Dropout2d(dropout))
        self.heatmap = nn.Sequential(_conv(neck, neck, act), nn.Conv2d(neck, num_classes, 1))
        self.sides = nn.Sequential(_conv(neck, neck, act), nn.Conv2d(neck, 4, 1))
        nn.init.constant_(self.heatmap[-1].bias, -math.log(99.0))  # start at p=0.01: no flood of negatives
        self.max_detections = max_detections
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: list[torch.Tensor] | torch.Tensor, targets: list[dict] | None = None):
        x = torch.stack(list(images)) if not isinstance(images, torch.Tensor) else images
        x = (x - self.mean) / self.std
        feats = []
        for layer in self.backbone:
            x = layer(x)
            feats.append(x)
        p = self.lateral[-1](feats[-1])
        for lateral, f in zip(reversed(self.lateral[:-1]), reversed(feats[1:-1])):
            p = lateral(f) + F.interpolate(p, size=f.shape[-2:], mode="nearest")
        p = self.smooth(p)
        heat, sides = self.heatmap(p).float(), F.softplus(self.sides(p).float()) * self.box_scale
        boxes = self._boxes(sides)
        if self.training:
            return self._loss(heat, boxes, targets or [])
        return self._decode(heat, boxes, float(images[0].shape[-1]))

    def _centres(self, h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * self.stride
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * self.stride
        return ys, xs

    def _boxes(self, sides: torch.Tensor) -> torch.Tensor:
        """B x H x W x 4 pixel xyxy from each cell centre and its (left, top, right, bottom) distances."""
        ys, xs = self._centres(sides.shape[2], sides.shape[3], sides.device)
        cx, cy = xs.view(1, 1, -1), ys.view(1, -1, 1)
        left, top, right, bottom = sides.unbind(1)
        return torch.stack([cx - left, cy - top, cx + right, cy + bottom], dim=-1)

    def _targets(self, boxes: torch.Tensor, labels: torch.Tensor, shape: tuple[int, int, int]):
        """Heatmap (K x H x W), per-cell box (H x W x 4) and its weight (H x W) for one image."""
        k, h, w = shape
        heat = boxes.new_zeros(k, h, w)
        if len(boxes) == 0:
            return heat, boxes.new_zeros(h, w, 4), boxes.new_zeros(h, w)
        ys, xs = self._centres(h, w, boxes.device)
        xs, ys = xs.view(1, 1, -1), ys.view(1, -1, 1)
        x1, y1, x2, y2 = (v.view(-1, 1, 1) for v in boxes.unbind(1))
        # the peak sits on the centre of the cell holding the box centre
        cx = (((x1 + x2) / 2 / self.stride).floor().clamp(0, w - 1) + 0.5) * self.stride
        cy = (((y1 + y2) / 2 / self.stride).floor().clamp(0, h - 1) + 0.5) * self.stride
        sx = ((x2 - x1) * 0.54 / 6).clamp_min(1.0)  # TTFNet's Gaussian, alpha = 0.54
        sy = ((y2 - y1) * 0.54 / 6).clamp_min(1.0)
        gauss = torch.exp(-((xs - cx) ** 2 / (2 * sx**2) + (ys - cy) ** 2 / (2 * sy**2)))
        channel = (labels - 1).view(-1, 1).expand(-1, h * w)
        heat.view(k, -1).scatter_reduce_(0, channel, gauss.view(-1, h * w), "amax")  # max over same-class
        inside = (xs >= x1) & (xs <= x2) & (ys >= y1) & (ys <= y2)
        weight, owner = (gauss * inside).max(0)
        return heat, boxes[owner], weight

    def _loss(self, heat: torch.Tensor, boxes: torch.Tensor, targets: list[dict]) -> dict[str, torch.Tensor]:
        from torchvision.ops import generalized_box_iou_loss

        parts = [self._targets(t["boxes"].float(), t["labels"], heat.shape[1:]) for t in targets]
        heat_t = torch.stack([p[0] for p in parts])
        box_t, weight = torch.stack([p[1] for p in parts]), torch.stack([p[2] for p in parts])
        pos = heat_t.eq(1).float()
        neg = (1 - pos) * (1 - heat_t).pow(4)
        prob = heat.sigmoid()
        focal = -(F.logsigmoid(heat) * (1 - prob).pow(2) * pos
                  + F.logsigmoid(-heat) * prob.pow(2) * neg).sum()
        mask = weight > 0
        giou = generalized_box_iou_loss(boxes[mask], box_t[mask], reduction="none")
        box_loss = (giou * weight[mask]).sum() / weight.sum().clamp_min(1e-6)
        return {"heatmap": focal / pos.sum().clamp_min(1), "box": 5 * box_loss}

    def _decode(self, heat: torch.Tensor, boxes: torch.Tensor, side: float) -> list[dict]:
        """Peaks of the heatmap (3x3 local maxima), best first, with their cells' boxes."""
        from torchvision.ops import batched_nms

        prob = heat.sigmoid()
        peaks = prob * (F.max_pool2d(prob, 3, 1, 1) == prob)
        b, k, h, w = prob.shape
        scores, index = peaks.view(b, -1).topk(min(self.max_detections, k * h * w))
        out = []
        for i in range(b):
            keep = scores[i] > 0.01
            idx, score = index[i][keep], scores[i][keep]
            cls, cell = idx // (h * w), idx % (h * w)
            box = boxes[i].view(-1, 4)[cell].clamp(0, side)
            kept = batched_nms(box, score, cls, 0.7)
            out.append({"boxes": box[kept], "scores": score[kept], "labels": cls[kept] + 1})
        return out


def build_detector(name: str, num_classes: int, image_size: int, cfg: dict) -> nn.Module:
    """`num_classes` real classes; torchvision detectors get one more for the background."""
    if name == "centernet-tiny":
        return CenterNet(num_classes, cfg["width"], cfg["activation"], cfg["dropout"], cfg["max_detections"])
    import torchvision

    kwargs = {"weights": None, "weights_backbone": None, "num_classes": num_classes + 1}
    if not name.startswith("ssd"):  # SSD resizes to its fixed 320 itself
        kwargs.update(min_size=image_size, max_size=image_size)
    return torchvision.models.get_model(name, **kwargs)


def load_backbone(model: nn.Module, path: str) -> list[str]:
    """Local ImageNet weights (a torchvision resnet50 / mobilenet_v3_large state dict) into the backbone."""
    from dlkit.modeling import load_pretrained

    body = getattr(getattr(model, "backbone", None), "body", None)
    if body is None:
        raise UserError("model.backbone_weights works with the torchvision Faster R-CNN, RetinaNet and FCOS "
                        "models", "for this model give full detector weights as model.pretrained")
    holder = nn.Module()
    holder.features = body  # mobilenet weights name these layers features.N
    try:
        return load_pretrained(body, path)
    except UserError:
        return load_pretrained(holder, path)


# --- metrics -----------------------------------------------------------------------------------
class _SharedMeanAP:
    """One torchmetrics MeanAveragePrecision (pycocotools backend), computed once per evaluation."""

    def __init__(self, num_classes: int):
        from torchmetrics.detection import MeanAveragePrecision

        self.metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", class_metrics=True,
                                           backend="pycocotools")
        self.metric.warn_on_many_detections = False  # COCO scores the best 100 per image, as intended
        self.num_classes = num_classes
        self.result: dict | None = None

    def values(self) -> dict[str, torch.Tensor]:
        if self.result is None:
            r = self.metric.compute()
            per_class = torch.full((self.num_classes,), -1.0)
            for label, ap in zip(r["classes"].reshape(-1).tolist(), r["map_per_class"].reshape(-1).tolist()):
                if 1 <= label <= self.num_classes:
                    per_class[label - 1] = ap
            self.result = {"map": r["map"], "map_50": r["map_50"], "map_75": r["map_75"],
                           "ap_per_class": per_class}
        return self.result


class MeanAPView:
    """A named view of the shared mAP; only the owner feeds it, so each batch counts once."""

    def __init__(self, shared: _SharedMeanAP, key: str, owner: bool):
        self.shared, self.key, self.owner = shared, key, owner

    def update(self, preds: list[dict], target: list[dict]) -> None:
        if self.owner:
            self.shared.metric.update(preds, target)
            self.shared.result = None

    def compute(self) -> torch.Tensor:
        return self.shared.values()[self.key]

    def reset(self) -> None:
        if self.owner:
            self.shared.metric.reset()
            self.shared.result = None

    def to(self, device) -> MeanAPView:
        if self.owner:
            self.shared.metric.to(device)
        return self


# --- the recipe ----------------------------------------------------------------------------------
class VisionDetection(Recipe):
    name = "vision-detection"
    task = "object detection"
    description = "Find and classify objects (boxes) in images; COCO JSON or YOLO txt; COCO mAP."
    default_model = "centernet-tiny"
    sample_data = "sample_data/vision_detection"
    monitor = "map_50"

    @classmethod
    def config(cls) -> dict:
        return {
            "data": {
                "batch_size": 8,
                "image_size": opt(0, "side in pixels images are letterboxed to (0 = median longer side of "
                                     "the training images, rounded to 32, between 64 and 320)"),
                "image_dir": opt(None, "folder COCO file_name paths are relative to (default: the JSON's "
                                       "folder or its images/ sub-folder)", type=str),
                "cache": opt(True, "decode images once and keep them in memory (turn off for huge sets)"),
                "max_bad_fraction": opt(0.05, "share of missing/unreadable images skipped with a warning "
                                              "before failing"),
                "augment": opt(True, "box-aware augmentation of training images (flips, scale, colour)"),
                "hflip": opt(True, "random horizontal flips"),
                "vflip": opt(False, "random vertical flips (for aerial or microscope images)"),
                "scale_jitter": opt(0.25, "random zoom by a factor in [1-x, 1+x], then a random crop or pad "
                                          "back to size (0 = off)"),
                "color_jitter": opt(0.2, "random brightness/contrast/saturation change (0 = off)"),
            },
            "model": {
                "name": opt("centernet-tiny", "detector: centernet-tiny (small, from scratch) or a "
                                              "torchvision detector", MODELS),
                "width": opt(16, "base channels of centernet-tiny (stages: 1, 2, 4, 8, 8x this)"),
                "backbone_weights": opt(None, "local ImageNet backbone weights for a torchvision detector "
                                              "(resnet50 / mobilenet_v3_large state dict)", type=str),
                "max_detections": opt(100, "boxes kept per image by centernet-tiny, best first"),
            },
            "loss": {"name": "focal"},
            "train": {"epochs": 60, "lr": 3e-3, "warmup": 0.05, "grad_clip": 5.0, "patience": 10},
            "predict": {
                "score_threshold": opt(0.3, "predictions below this score are left out of the records, the "
                                            "COCO results and the drawings"),
                "merge_iou": opt(0.7, "a box overlapping a better-scored one (of any class) by more than "
                                      "this IoU is dropped, so each object gets one label (null = keep all)",
                                 type=float, nullable=True),
                "out_dir": opt("predictions", "folder for coco_results.json and drawn/ images written by "
                                              "predict, relative to the current folder (null = none)",
                               type=str, nullable=True),
            },
        }

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        if cfg["loss"]["name"] != "focal" or cfg["loss"]["label_smoothing"]:
            raise UserError("detectors bring their own losses: loss.name and loss.label_smoothing do not "
                            "apply", "leave loss.* at the defaults")
        self.report = BoxReport()
        self.fresh = False  # True while a new run is being set up: backbone weights load only then

    # --- data -----------------------------------------------------------------------------
    def _groups(self, found: dict, evaluate_all: bool) -> dict[str, list]:
        """Images per split: as split on disk, the missing val/test carved out of train, or a seeded split."""
        d, seed = self.cfg["data"], self.cfg["seed"]
        if evaluate_all:
            chosen = [found["test"]] if "test" in found else list(found.values())
            return {"test": [im for s in chosen for im in s.images]}
        if "all" in found:
            images = found["all"].images
            parts = random_split(len(images), d["val_fraction"], d["test_fraction"], seed)
            return {s: [images[i] for i in idx] for s, idx in zip(("train", "val", "test"), parts)}
        if "train" not in found:
            raise UserError(f"the data has {', '.join(found)} split(s) but no train split",
                            "add train.json (or a train/ folder) with the training images")
        train = found["train"].images
        fractions = [0.0 if s in found else d[f"{s}_fraction"] for s in ("val", "test")]
        tr, va, te = random_split(len(train), *fractions, seed)
        return {"train": [train[i] for i in tr],
                "val": found["val"].images if "val" in found else [train[i] for i in va],
                "test": found["test"].images if "test" in found else [train[i] for i in te]}

    def _fit_state(self, train: list, found: dict, path: Path) -> dict:
        """Classes (those with training boxes, in category-id order), input size and the baseline's prior."""
        if not train:
            raise UserError(f"no usable training images in '{path}'", "check the image paths and annotations")
        boxes = Counter(lab for im in train for lab in im.labels)
        if not boxes:
            raise UserError(f"the training images in '{path}' have no boxes",
                            "a detector needs annotated objects to learn from")
        categories: dict[str, int] = {}
        for split in reversed(list(found.values())):  # the training split's ids win
            categories.update(split.categories)
        classes = sorted((c for c in categories if boxes[c]), key=lambda c: (categories[c], c))
        unused = [c for c in categories if not boxes[c]]
        if unused:
            self.report.add("category with no training boxes (left out)", ", ".join(unused[:5]))
        size = self.cfg["data"]["image_size"] or int(
            min(320, max(64, round(statistics.median(max(im.width, im.height) for im in train) / 32) * 32)))
        rel = {c: [] for c in classes}
        for im in train:
            for (x1, y1, x2, y2), lab in zip(im.boxes, im.labels):
                rel[lab].append(((x2 - x1) / im.width, (y2 - y1) / im.height))
        total = sum(boxes.values())
        prior = {"share": [round(boxes[c] / total, 5) for c in classes],
                 "size": [[round(statistics.fmean(v[i] for v in rel[c]), 5) for i in (0, 1)]
                          for c in classes]}
        return {"classes": classes, "category_ids": [categories[c] for c in classes], "image_size": size,
                "prior": prior, "boxes_per_class": {c: boxes[c] for c in classes}}

    def _transform(self, side: int, train: bool):
        from torchvision.transforms import v2

        d = self.cfg["data"]
        steps = []
        if train and d["augment"]:
            if d["hflip"]:
                steps.append(v2.RandomHorizontalFlip())
            if d["vflip"]:
                steps.append(v2.RandomVerticalFlip())
            if d["scale_jitter"] > 0:  # zoom, then a random crop (or pad) back to size: shifts too
                size, j = (side, side), d["scale_jitter"]
                steps += [v2.ScaleJitter(size, (1 - j, 1 + j)),
                          v2.RandomCrop(size, pad_if_needed=True, fill=PAD)]
            if d["color_jitter"] > 0:  # no hue: ten times slower than the rest on uint8 images
                c = d["color_jitter"]
                steps.append(v2.ColorJitter(c, c, c))
            steps.append(v2.SanitizeBoundingBoxes(min_size=2))
        steps.append(v2.ToDtype(torch.float32, scale=True))
        return v2.Compose(steps)

    def load_data(self, path: Path, state: dict | None = None, evaluate_all: bool = False) -> RecipeData:
        d = self.cfg["data"]
        self.report = BoxReport()
        found = read_boxes(path, self.report, Path(d["image_dir"]).expanduser() if d["image_dir"] else None)
        groups = self._groups(found, evaluate_all)
        self._check_bad_images(path, sum(len(g) for g in groups.values()))
        if state is None:
            self.fresh = True
            state = self._fit_state(groups.get("train", []), found, path)
        sets = {}
        for split, items in groups.items():
            sets[split] = DetectionSet(items, state["classes"], state["image_size"], d["cache"], self.report)
            sets[split].transform = self._transform(state["image_size"], train=split == "train")
            for bad in sets[split].bad:
                self.report.bad_image("unreadable image", bad)
            for item in sets[split].items:
                if not item.boxes:
                    self.report.add("image with no boxes (kept as negative)", str(item.file))
        self._check_bad_images(path, sum(len(s) for s in sets.values()))
        state.setdefault("counts", {s: len(v) for s, v in sets.items()})
        return RecipeData(sets.get("train"), sets.get("val"), sets.get("test"), state,
                          notes=self.report.notes())

    def _check_bad_images(self, path: Path, usable: int) -> None:
        """Missing and unreadable images are skipped, up to data.max_bad_fraction of them."""
        bad = self.report.bad_images
        check_bad_fraction(bad, len(bad) + usable, self.cfg["data"]["max_bad_fraction"], path)
        if usable == 0:
            raise UserError(f"no usable images in '{path}'", "check the image paths and annotations")

    def check(self, path: Path) -> list[Finding]:
        """One row per kind of problem found (with examples), the split sizes and the boxes per class."""
        try:
            data = self.load_data(path)
        except UserError as exc:
            return [Finding("data readable", "fatal", exc.message, exc.hint or "")]
        sizes = " / ".join(f"{len(s) if s is not None else 0} {n}"
                           for n, s in (("train", data.train), ("val", data.val), ("test", data.test)))
        found = [Finding("data readable", "ok", f"{sizes} images")]
        for kind, n in self.report.counts.items():
            found.append(Finding(kind, "info" if kind in BoxReport.INFO else "warning",
                                 f"{n} (e.g. {'; '.join(self.report.examples[kind])})",
                                 BoxReport.FIXES.get(kind, "")))
        per_class = data.state["boxes_per_class"]
        rare = min(per_class.values()) < 0.1 * max(per_class.values())
        found.append(Finding("boxes per class", "warning" if rare else "ok",
                             ", ".join(f"{c} {n}" for c, n in per_class.items()),
                             "collect more examples of the rare classes" if rare else ""))
        return found

    # --- model and step ---------------------------------------------------------------------
    def build_model(self, state: dict) -> nn.Module:
        m = self.cfg["model"]
        model = build_detector(m["name"], len(state["classes"]), state["image_size"], m)
        if m["name"] != "centernet-tiny" and self.fresh and self.cfg["train"]["lr"] > 1e-3:
            console.warn(f"train.lr={self.cfg['train']['lr']} is high for {m['name']}: torchvision detectors "
                         "usually need about 3e-4 with AdamW (e.g. train.lr=3e-4)")
        if m["backbone_weights"] and self.fresh:
            skipped = load_backbone(model, m["backbone_weights"])
            console.info(f"loaded backbone weights from {m['backbone_weights']} "
                         f"({len(skipped)} tensors left at init)")
        return model

    def collate(self, items: list[dict]) -> dict:
        """Images stack (all letterboxed to one size); boxes and labels stay per-image lists."""
        batch = {"image": torch.stack([it["image"] for it in items]), "id": [it["id"] for it in items]}
        for key in ("scale", "size"):
            if key in items[0]:
                batch[key] = torch.stack([it[key] for it in items])
        if "boxes" in items[0]:
            batch["boxes"] = [it["boxes"] for it in items]
            batch["labels"] = [it["labels"] for it in items]
        return batch

    def step(self, model: nn.Module, batch: dict) -> dict:
        """Train mode: the detector's own losses, summed. Eval mode: detections for mAP (loss 0)."""
        images = list(batch["image"])
        targets = [{"boxes": b, "labels": lab} for b, lab in zip(batch["boxes"], batch["labels"])]
        if model.training:
            losses = model(images, targets)
            return {"loss": sum(losses.values()), "preds": [], "target": targets}
        preds = [{"boxes": p["boxes"].float(), "scores": p["scores"].float(), "labels": p["labels"]}
                 for p in model(images)]
        return {"loss": batch["image"].new_zeros(()), "preds": preds, "target": targets}

    def metrics(self, state: dict) -> dict:
        shared = _SharedMeanAP(len(state["classes"]))
        return {key: MeanAPView(shared, key, owner=key == "map_50")
                for key in ("map_50", "map", "map_75", "ap_per_class")}

    def baseline(self, data: RecipeData) -> dict:
        """Every class's mean box (relative size), centred, scored by its share of the training boxes."""
        prior, test = data.state["prior"], data.test
        k = len(data.state["classes"])
        preds, targets = [], []
        for i in range(len(test)):
            boxes, labels = test.target(i)
            (sx, sy), item = test.scale(i), test.items[i]
            w, h = item.width * sx, item.height * sy
            guess = [[w / 2 - rw * w / 2, h / 2 - rh * h / 2, w / 2 + rw * w / 2, h / 2 + rh * h / 2]
                     for rw, rh in prior["size"]]
            preds.append({"boxes": torch.tensor(guess), "scores": torch.tensor(prior["share"]),
                          "labels": torch.arange(1, k + 1)})
            targets.append({"boxes": boxes, "labels": labels})
        metrics = self.metrics(data.state)
        for m in metrics.values():
            m.update(preds, targets)
        values = {name: m.compute() for name, m in metrics.items()}
        return {name: float(v) if v.dim() == 0 else v.tolist() for name, v in values.items()}

    # --- predict ---------------------------------------------------------------------------
    def read_inputs(self, inputs: list[str], state: dict) -> Dataset:
        side = state["image_size"]
        dataset = InputImages(input_paths(inputs), side, self._transform(side, train=False))
        if dataset.bad:
            console.warn(f"skipped {len(dataset.bad)} unreadable input(s): "
                         + ", ".join(map(str, dataset.bad[:5])))
        return dataset

    def predict_step(self, model: nn.Module, batch: dict) -> dict:
        """Detections in the original image's pixels (letterbox undone, clipped to the image)."""
        out = []
        for det, (sx, sy), (w, h) in zip(model(list(batch["image"])), batch["scale"], batch["size"]):
            boxes = det["boxes"].float() / torch.stack([sx, sy, sx, sy])
            boxes = torch.min(boxes.clamp_min(0), torch.stack([w, h, w, h]))
            out.append({"boxes": boxes.cpu(), "scores": det["scores"].float().cpu(),
                        "labels": det["labels"].cpu() - 1})
        return {"detections": out, "size": batch["size"]}

    def _kept(self, det: dict) -> torch.Tensor:
        """Indices of boxes scoring at least the threshold, one label per object (best class wins)."""
        from torchvision.ops import nms

        p = self.cfg["predict"]
        keep = torch.nonzero(det["scores"] >= p["score_threshold"]).flatten()
        if p["merge_iou"] is not None:
            keep = keep[nms(det["boxes"][keep], det["scores"][keep], p["merge_iou"])]
        return keep

    def to_records(self, ids: list, outputs: dict, state: dict) -> list[dict]:
        classes = state["classes"]
        records = []
        for n, (path, det, (w, h)) in enumerate(zip(ids, outputs["detections"], outputs["size"].tolist()), 1):
            keep = self._kept(det)
            stem = Path(path).stem
            records.append({
                "path": path, "image_id": int(stem) if stem.isdigit() else n,
                "width": int(w), "height": int(h),
                "boxes": [[round(v, 2) for v in b] for b in det["boxes"][keep].tolist()],
                "labels": [classes[i] for i in det["labels"][keep].tolist()],
                "scores": [round(s, 4) for s in det["scores"][keep].tolist()],
            })
        if self.cfg["predict"]["out_dir"]:
            out = Path(self.cfg["predict"]["out_dir"])
            write_prediction_files(records, state["classes"], state["category_ids"], out)
            console.info(f"drew {len(records)} image(s) into {out / 'drawn'}; "
                         f"COCO results in {out / 'coco_results.json'}")
        return records
