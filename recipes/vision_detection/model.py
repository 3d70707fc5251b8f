"""Detectors: the default `centernet-tiny` (anchor-free, learns from scratch on a CPU) and torchvision's."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from dlkit.errors import UserError
from dlkit.modeling import activation


# --- the default model ----------------------------------------------------------------------------
def _conv(c_in: int, c_out: int, act: str, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), activation(act)
    )


class _Stage(nn.Module):
    """Halve the resolution, then one residual block."""

    def __init__(self, c_in: int, c_out: int, act: str):
        super().__init__()
        self.down = _conv(c_in, c_out, act, stride=2)
        self.block = nn.Sequential(
            _conv(c_out, c_out, act), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out)
        )
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

    def __init__(
        self,
        num_classes: int,
        width: int = 16,
        act: str = "relu",
        dropout: float = 0.0,
        max_detections: int = 100,
    ):
        super().__init__()
        chans = [width, 2 * width, 4 * width, 8 * width, 8 * width]
        neck = chans[1]
        self.backbone = nn.ModuleList(
            [_conv(3, chans[0], act, stride=2)]
            + [_Stage(a, b, act) for a, b in zip(chans, chans[1:], strict=False)]
        )
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
        heat, boxes = self.dense(x)
        if self.training:
            return self._loss(heat, boxes, targets or [])
        return decode(heat, boxes, float(x.shape[-1]), self.max_detections)

    def dense(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B x 3 x S x S in [0, 1]) -> class heatmap logits (B x K x H x W) and each cell's pixel box
        (B x H x W x 4): everything but the peak picking, so it exports as one graph."""
        x = (x - self.mean) / self.std
        feats = []
        for layer in self.backbone:
            x = layer(x)
            feats.append(x)
        p = self.lateral[-1](feats[-1])
        for lateral, f in zip(reversed(self.lateral[:-1]), reversed(feats[1:-1]), strict=True):
            p = lateral(f) + F.interpolate(p, size=f.shape[-2:], mode="nearest")
        p = self.smooth(p)
        heat, sides = self.heatmap(p).float(), F.softplus(self.sides(p).float()) * self.box_scale
        return heat, self._boxes(sides)

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
        focal = -(
            F.logsigmoid(heat) * (1 - prob).pow(2) * pos + F.logsigmoid(-heat) * prob.pow(2) * neg
        ).sum()
        mask = weight > 0
        giou = generalized_box_iou_loss(boxes[mask], box_t[mask], reduction="none")
        box_loss = (giou * weight[mask]).sum() / weight.sum().clamp_min(1e-6)
        return {"heatmap": focal / pos.sum().clamp_min(1), "box": 5 * box_loss}


def decode(heat: torch.Tensor, boxes: torch.Tensor, side: float, max_detections: int) -> list[dict]:
    """Peaks of the heatmap (3x3 local maxima), best first, with their cells' boxes."""
    from torchvision.ops import batched_nms

    prob = heat.sigmoid()
    peaks = prob * (F.max_pool2d(prob, 3, 1, 1) == prob)
    b, k, h, w = prob.shape
    scores, index = peaks.view(b, -1).topk(min(max_detections, k * h * w))
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


def read_backbone(path: str) -> dict[str, torch.Tensor]:
    """A local state dict (.safetensors, or .pth/.pt read without unpickling code) for `load_backbone`."""
    from pathlib import Path

    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(
            f"model.backbone_weights file '{file}' does not exist", "give a local .safetensors or .pth file"
        )
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(file))
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"model.backbone_weights file '{file}' is not a plain state dict ({exc})") from None
    state = state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"model.backbone_weights file '{file}' does not hold a state dict of tensors")
    return state


def load_backbone(model: nn.Module, weights: dict[str, torch.Tensor]) -> list[str]:
    """ImageNet weights (a torchvision resnet50 / mobilenet_v3_large state dict) into a torchvision
    detector's backbone; returns the backbone's keys left at their init."""
    body = getattr(getattr(model, "backbone", None), "body", None)
    if body is None:
        raise UserError(
            "model.backbone_weights works with the torchvision Faster R-CNN, RetinaNet and FCOS models",
            "for this model give full detector weights as model.pretrained",
        )
    holder = nn.Module()
    holder.features = body  # mobilenet weights name these layers features.N
    for target in (body, holder):
        own = target.state_dict()
        fitting = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
        if fitting:
            target.load_state_dict(fitting, strict=False)
            return sorted(set(own) - set(fitting))
    raise UserError(
        "no tensor of model.backbone_weights fits the backbone (names or shapes differ)",
        "give torchvision resnet50 weights for the ResNet-50 detectors, mobilenet_v3_large ones for the "
        "MobileNet ones",
    )
