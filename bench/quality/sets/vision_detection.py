"""vision-detection on real objects pasted into real photos, all shipped by packages (no download).

- `digits-in-photos`: scikit-learn's `load_digits` (1,797 handwritten digits, 8x8, 10 classes),
  upscaled (bicubic) to 14-34 px and pasted 1-4 to a scene into random crops of the photos
  scikit-image ships (astronaut, camera, coins, Hubble deep field, moon, retina, a page, IHC), 96x96 px.
- `glyphs-in-photos`: ten capital letters rendered from the 21 text fonts matplotlib ships (DejaVu,
  STIX, Computer Modern) at 16-45 pt, rotated up to 12 degrees, pasted 1-4 to a scene into crops of
  other photos (scikit-learn's china and flower, scikit-image's cat, coffee, rocket, motorcycle,
  bricks, grass, gravel), 128x96 px. E/F and K/X/R make some classes near-alike.

Each object is blended in with its own alpha (the digit's ink, the glyph's antialiased coverage) in
a colour that contrasts with the patch under it, so the pixels stay the photo's elsewhere; boxes are
the tight box of the ink. 300 scenes per set (about 750 boxes), JPEGs (quality 90) under
`DIR/images/`, listed in COCO `DIR/{train,val,test}.json`: a fixed 60/20/20 split of the scenes; the
digits of each split come from a disjoint part of `load_digits`, so no test digit was seen in
training. The hand-written peer is the anchor-free detector a practitioner writes first
(CenterNet-style: stride-4 heatmap per class + centre offset and log size, focal loss, 3x3 peak
decoding, no augmentation), scored with the same torchmetrics COCO mAP@0.5 as dlkit.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from common import QualitySet

DIGIT_PHOTOS = ("astronaut", "camera", "coins", "hubble_deep_field", "moon", "retina", "page", "ihc")
GLYPH_PHOTOS = ("chelsea", "coffee", "rocket", "brick", "grass", "gravel", "motorcycle_left")
GLYPH_FONTS = [
    *(f"DejaVu{family}{style}.ttf" for family in ("Sans", "Serif") for style in ("", "-Bold")),
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    *(f"DejaVuSansMono{style}.ttf" for style in ("", "-Bold", "-Oblique", "-BoldOblique")),
    *(f"STIXGeneral{style}.ttf" for style in ("", "Bol", "Italic", "BolIta")),
    *(f"cm{face}10.ttf" for face in ("r", "b", "ss", "ti", "tt")),
]
LETTERS = "AEFHKMRSXZ"
SPLITS = {"train": 0.6, "val": 0.2, "test": 0.2}


def _photos(skimage_names: tuple[str, ...], sklearn_names: tuple[str, ...] = ()) -> list[np.ndarray]:
    """uint8 RGB photos from the files inside the wheels (not skimage.data's fetchers, which may download)."""
    import skimage
    import sklearn.datasets
    from PIL import Image

    bundled = Path(skimage.data.data_dir)
    files = [next(bundled.glob(f"{n}.*")) for n in skimage_names]
    files += [Path(sklearn.datasets.__file__).parent / "images" / f"{n}.jpg" for n in sklearn_names]
    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


def _crop(photos: list[np.ndarray], w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """A random crop of a random photo (0.4-1.0 of its shorter side) resized to w x h, float 0-1."""
    from PIL import Image

    photo = photos[rng.integers(len(photos))]
    ph, pw = photo.shape[:2]
    side = rng.uniform(0.4, 1.0) * min(ph, pw)
    cw, ch = int(min(pw, side * w / max(w, h) * 1.0)), int(min(ph, side * h / max(w, h)))
    x, y = rng.integers(0, pw - cw + 1), rng.integers(0, ph - ch + 1)
    crop = Image.fromarray(photo[y : y + ch, x : x + cw]).resize((w, h), Image.BILINEAR)
    return np.asarray(crop, dtype=np.float32) / 255


def _scene(photos, objects, w: int, h: int, rng: np.random.Generator):
    """Paste (alpha, class) objects at free random places; returns the uint8 image and COCO boxes."""
    img = _crop(photos, w, h, rng)
    boxes: list[tuple[list[float], int]] = []
    for alpha, label in objects:
        oh, ow = alpha.shape
        for _ in range(30):  # a place that keeps 2 px away from the objects already there
            x, y = int(rng.integers(0, w - ow + 1)), int(rng.integers(0, h - oh + 1))
            ys, xs = np.nonzero(alpha > 0.3)
            box = [x + xs.min(), y + ys.min(), x + xs.max() + 1, y + ys.max() + 1]
            if all(
                box[0] > b[2] + 2 or box[2] < b[0] - 2 or box[1] > b[3] + 2 or box[3] < b[1] - 2
                for b, _ in boxes
            ):
                break
        else:
            continue
        patch = img[y : y + oh, x : x + ow]
        bright = patch.mean() < 0.5
        colour = rng.uniform(0.7, 1.0, 3) if bright else rng.uniform(0.0, 0.3, 3)
        a = alpha[..., None]
        img[y : y + oh, x : x + ow] = patch * (1 - a) + colour * a
        boxes.append(([float(v) for v in box], label))
    return (img * 255).round().astype(np.uint8), boxes


def _write(dest: Path, scenes: dict[str, list], classes: list[str]) -> Path:
    """Scenes as JPEGs in images/ and one COCO file per split."""
    from PIL import Image

    (dest / "images").mkdir(parents=True, exist_ok=True)
    categories = [{"id": i + 1, "name": c} for i, c in enumerate(classes)]
    n = 0
    for split, items in scenes.items():
        coco = {"images": [], "annotations": [], "categories": categories}
        for img, boxes in items:
            n += 1
            name = f"scene_{n:04d}.jpg"
            Image.fromarray(img).save(dest / "images" / name, quality=90)
            coco["images"].append({"id": n, "file_name": name, "width": img.shape[1], "height": img.shape[0]})
            for (x1, y1, x2, y2), label in boxes:
                coco["annotations"].append(
                    {
                        "id": len(coco["annotations"]) + 1,
                        "image_id": n,
                        "category_id": label + 1,
                        "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "area": (x2 - x1) * (y2 - y1),
                        "iscrowd": 0,
                    }
                )
        (dest / f"{split}.json").write_text(json.dumps(coco))
    return dest


def prepare_digits(dest: Path, scenes: int = 300) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(digits.images))
    photos = _photos(DIGIT_PHOTOS)
    out, start = {}, 0
    for split, share in SPLITS.items():
        pool = order[int(start * len(order)) : int((start + share) * len(order))]
        start += share
        items = []
        for _ in range(int(scenes * share)):
            objects = []
            for i in rng.choice(pool, rng.integers(1, 5), replace=False):
                side = int(rng.integers(14, 35))
                ink = Image.fromarray((digits.images[i] * 255 / 16).astype(np.uint8))
                objects.append(
                    (
                        np.asarray(ink.resize((side, side), Image.BICUBIC), np.float32) / 255,
                        int(digits.target[i]),
                    )
                )
            items.append(_scene(photos, objects, 96, 96, rng))
        out[split] = items
    return _write(dest, out, [str(d) for d in range(10)])


def _glyph(font_path: Path, char: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """Alpha (0-1) of one rotated letter, cropped to its ink."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(font_path), size)
    canvas = Image.new("L", (size * 2, size * 2), 0)
    ImageDraw.Draw(canvas).text((size // 2, size // 4), char, font=font, fill=255)
    canvas = canvas.rotate(rng.uniform(-12, 12), Image.BICUBIC)
    return np.asarray(canvas.crop(canvas.getbbox()), np.float32) / 255


def prepare_glyphs(dest: Path, scenes: int = 300) -> Path:
    import matplotlib

    fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    rng = np.random.default_rng(1)
    photos = _photos(GLYPH_PHOTOS, ("china", "flower"))
    out = {}
    for split, share in SPLITS.items():
        items = []
        for _ in range(int(scenes * share)):
            objects = []
            for _ in range(rng.integers(1, 5)):
                label, font = int(rng.integers(len(LETTERS))), GLYPH_FONTS[rng.integers(len(GLYPH_FONTS))]
                objects.append((_glyph(fonts / font, LETTERS[label], int(rng.integers(16, 46)), rng), label))
            items.append(_scene(photos, objects, 128, 96, rng))
        out[split] = items
    return _write(dest, out, list(LETTERS))


def handwritten_centernet(data: Path, seed: int, epochs: int = 60) -> float:
    """CenterNet by hand: a small conv encoder-decoder to stride 4, a heatmap per class (focal loss on
    Gaussian peaks) and offset + log size at the centre cell (L1); AdamW, cosine lr, no augmentation;
    test mAP@0.5 at the best val epoch."""
    import copy
    import math

    import torch
    from PIL import Image
    from torch import nn
    from torch.nn import functional as F
    from torchmetrics.detection import MeanAveragePrecision

    torch.manual_seed(seed)

    def load(split: str):
        coco = json.loads((data / f"{split}.json").read_text())
        ids = [im["id"] for im in coco["images"]]
        x = torch.stack(
            [
                torch.from_numpy(np.array(Image.open(data / "images" / im["file_name"]).convert("RGB")))
                for im in coco["images"]
            ]
        )
        boxes = {i: ([], []) for i in ids}
        for a in coco["annotations"]:
            x0, y0, w, h = a["bbox"]
            boxes[a["image_id"]][0].append([x0, y0, x0 + w, y0 + h])
            boxes[a["image_id"]][1].append(a["category_id"] - 1)
        ts = [
            {
                "boxes": torch.tensor(boxes[i][0]).view(-1, 4),
                "labels": torch.tensor(boxes[i][1], dtype=torch.long),
            }
            for i in ids
        ]
        return x.permute(0, 3, 1, 2).float() / 255 - 0.5, ts, len(coco["categories"])

    (xtr, ttr, k), (xva, tva, _), (xte, tte, _) = load("train"), load("val"), load("test")
    S = 4

    def block(i: int, o: int, s: int = 1) -> nn.Module:
        return nn.Sequential(nn.Conv2d(i, o, 3, s, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU())

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            chans = [3, 16, 32, 64, 64]  # strides 2, 4, 8, 16
            self.down = nn.ModuleList(
                nn.Sequential(block(a, b, 2), block(b, b)) for a, b in zip(chans, chans[1:], strict=False)
            )
            self.up = nn.ModuleList([block(128, 64), block(96, 32)])
            self.head = nn.Sequential(block(32, 32), nn.Conv2d(32, k + 4, 1))
            nn.init.constant_(self.head[-1].bias[:k], -4.6)

        def forward(self, x):
            feats = []
            for d in self.down:
                x = d(x)
                feats.append(x)
            for up, skip in zip(self.up, (feats[2], feats[1]), strict=True):
                x = up(torch.cat([F.interpolate(x, size=skip.shape[-2:]), skip], 1))
            return self.head(x)

    def targets(ts, h, w):
        heat, reg, mask = (
            torch.zeros(len(ts), k, h, w),
            torch.zeros(len(ts), 4, h, w),
            torch.zeros(len(ts), h, w),
        )
        ys, xs = torch.arange(h).view(-1, 1).float(), torch.arange(w).view(1, -1).float()
        for b, t in enumerate(ts):
            for (x1, y1, x2, y2), c in zip(t["boxes"].tolist(), t["labels"].tolist(), strict=True):
                cx, cy = (x1 + x2) / 2 / S, (y1 + y2) / 2 / S
                ix, iy, sig = min(int(cx), w - 1), min(int(cy), h - 1), max(x2 - x1, y2 - y1) / S / 6
                heat[b, c] = torch.maximum(
                    heat[b, c], torch.exp(-((xs - ix) ** 2 + (ys - iy) ** 2) / (2 * sig**2))
                )
                reg[b, :, iy, ix] = torch.tensor([cx - ix, cy - iy, math.log(x2 - x1), math.log(y2 - y1)])
                mask[b, iy, ix] = 1
        return heat, reg, mask

    def loss_fn(out, ts):
        heat, reg, mask = targets(ts, *out.shape[-2:])
        p, pos = out[:, :k].sigmoid().clamp(1e-4, 1 - 1e-4), heat.eq(1).float()
        focal = -(pos * (1 - p) ** 2 * p.log() + (1 - pos) * (1 - heat) ** 4 * p**2 * (1 - p).log()).sum()
        l1 = (F.l1_loss(out[:, k:], reg, reduction="none").sum(1) * mask).sum()
        return (focal + l1) / mask.sum().clamp_min(1)

    def detect(out):
        prob = out[:, :k].sigmoid()
        prob = prob * (F.max_pool2d(prob, 3, 1, 1) == prob)
        b, _, h, w = prob.shape
        scores, idx = prob.reshape(b, -1).topk(100)
        cls, cell = idx // (h * w), idx % (h * w)
        reg = out[:, k:].flatten(2).gather(2, cell.unsqueeze(1).expand(-1, 4, -1))
        cx, cy = (cell % w + reg[:, 0]) * S, (cell // w + reg[:, 1]) * S
        bw, bh = reg[:, 2].exp(), reg[:, 3].exp()
        boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1)
        return [{"boxes": boxes[i], "scores": scores[i], "labels": cls[i]} for i in range(b)]

    def map50(net, x, ts) -> float:
        net.eval()
        metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend="pycocotools")
        with torch.no_grad():
            for i in range(0, len(x), 32):
                metric.update(detect(net(x[i : i + 32])), ts[i : i + 32])
        return float(metric.compute()["map_50"])

    net = Net()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3)
    steps = epochs * math.ceil(len(xtr) / 16)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps, pct_start=0.05)
    best, best_state = -1.0, None
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(xtr)).split(16):
            loss = loss_fn(net(xtr[idx]), [ttr[i] for i in idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        score = map50(net, xva, tva)
        if score > best:
            best, best_state = score, copy.deepcopy(net.state_dict())
    net.load_state_dict(best_state)
    return map50(net, xte, tte)


SETS = [
    QualitySet(
        name="digits-in-photos",
        recipe="vision-detection",
        source="scikit-learn load_digits (8x8 digits) pasted into photos scikit-image ships (skimage/data)",
        metric="map_50",
        mode="max",
        prepare=prepare_digits,
        handwritten=handwritten_centernet,
    ),
    QualitySet(
        name="glyphs-in-photos",
        recipe="vision-detection",
        source="letters rendered from matplotlib's fonts (mpl-data/fonts/ttf) pasted into photos shipped by "
        "scikit-image (skimage/data) and scikit-learn (china.jpg, flower.jpg)",
        metric="map_50",
        mode="max",
        prepare=prepare_glyphs,
        handwritten=handwritten_centernet,
    ),
]
