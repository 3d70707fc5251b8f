"""Small networks dlkit builds itself, in 2D or 3D: a U-Net for segmentation and a plain CNN classifier,
with what goes with them: the soft Dice loss, per-image Dice/IoU scores and a binary-metric adapter.

The U-Net uses instance normalisation, so it behaves the same with the batch of 2 that 3D volumes
allow on a small GPU as with a batch of 16 slices; the classifier uses batch normalisation (see
`SmallCNN`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from dlkit.modeling import activation


def _layers(dims: int) -> tuple[type, type, type]:
    if dims == 2:
        return nn.Conv2d, nn.MaxPool2d, nn.ConvTranspose2d
    return nn.Conv3d, nn.MaxPool3d, nn.ConvTranspose3d


def _norm(dims: int, kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return (nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d)(channels)
    return (nn.InstanceNorm2d if dims == 2 else nn.InstanceNorm3d)(channels, affine=True)


def conv_block(dims: int, cin: int, cout: int, act: str, norm: str = "instance") -> nn.Sequential:
    """Two 3x3(x3) convolutions, each followed by a norm layer and the activation."""
    conv = _layers(dims)[0]
    return nn.Sequential(
        conv(cin, cout, 3, padding=1, bias=False),
        _norm(dims, norm, cout),
        activation(act),
        conv(cout, cout, 3, padding=1, bias=False),
        _norm(dims, norm, cout),
        activation(act),
    )


class UNet(nn.Module):
    """The classic encoder-decoder with skip connections (Ronneberger et al., 2015), 2D or 3D.

    `depth` levels of width channels, 2*channels, ...; inputs of any size are padded up to a
    multiple of 2**(depth-1) and the output cropped back, so no resizing is needed for odd shapes.
    """

    def __init__(
        self,
        dims: int,
        in_channels: int,
        num_classes: int,
        channels: int = 16,
        depth: int = 3,
        act: str = "relu",
        dropout: float = 0.0,
    ):
        super().__init__()
        _, pool, up = _layers(dims)
        widths = [channels * 2**i for i in range(depth)]
        self.dims, self.factor = dims, 2 ** (depth - 1)
        self.down = nn.ModuleList()
        cin = in_channels
        for w in widths:
            self.down.append(conv_block(dims, cin, w, act))
            cin = w
        self.pool = pool(2)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.up = nn.ModuleList(up(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(depth - 1)))
        self.decode = nn.ModuleList(
            conv_block(dims, 2 * widths[i], widths[i], act) for i in reversed(range(depth - 1))
        )
        self.head = _layers(dims)[0](widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial = x.shape[2:]
        pad: list[int] = []
        for s in reversed(spatial):
            pad += [0, (-s) % self.factor]
        if any(pad):
            x = F.pad(x, pad)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = self.dropout(skips.pop())
        for up, block in zip(self.up, self.decode, strict=True):
            x = block(torch.cat([up(x), skips.pop()], dim=1))
        out = self.head(x)
        return out[(..., *(slice(0, s) for s in spatial))]


class SmallCNN(nn.Module):
    """`depth` conv blocks with pooling, then average and max pooling side by side and a linear head.

    Max pooling keeps a small bright finding visible that averaging over a whole volume would dilute.
    Batch norm (the default here) keeps feature sizes comparable between scans, which is what tells a
    scan with a finding from one without; instance norm would rescale every scan's features alike.
    """

    def __init__(
        self,
        dims: int,
        in_channels: int,
        num_classes: int,
        channels: int = 16,
        depth: int = 3,
        act: str = "relu",
        dropout: float = 0.0,
        norm: str = "batch",
    ):
        super().__init__()
        pool = _layers(dims)[1]
        blocks: list[nn.Module] = []
        cin = in_channels
        for i in range(depth):
            w = channels * 2**i
            blocks += [conv_block(dims, cin, w, act, norm)] + ([pool(2)] if i < depth - 1 else [])
            cin = w
        self.features = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(2 * cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x).flatten(2)
        pooled = torch.cat([f.mean(-1), f.amax(-1)], dim=1)
        return self.head(self.dropout(pooled))


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """1 - soft Dice of the foreground classes present in the batch, summed over the whole batch.

    Summing over the batch (not per image) keeps the loss defined when a slice has no foreground; a
    class absent from the whole batch is left to cross-entropy, since its Dice would be ~0 whatever
    the model predicts.
    """
    k = logits.shape[1]
    probs = logits.float().softmax(1)
    onehot = F.one_hot(target.long(), k).movedim(-1, 1).to(probs.dtype)
    axes = [0] + list(range(2, probs.dim()))
    inter = (probs * onehot).sum(axes)[1:]
    total = (probs + onehot).sum(axes)[1:]
    present = (onehot.sum(axes)[1:] > 0).to(probs.dtype)  # a weight, not a branch: no host sync per step
    return (present * (1 - (2 * inter + eps) / (total + eps))).sum() / present.sum().clamp_min(1)


class PositiveClass:
    """A binary torchmetrics metric fed the positive class's probability from 2-class logits."""

    def __init__(self, metric, positive: int):
        self.metric, self.positive = metric, positive

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        self.metric.update(preds.float().softmax(-1)[:, self.positive], (target == self.positive).long())

    def compute(self) -> torch.Tensor:
        return self.metric.compute()

    def reset(self) -> None:
        self.metric.reset()

    def to(self, device):
        self.metric.to(device)
        return self


class SegmentationScore:
    """Dice or IoU of each class per image, averaged over the images whose reference holds that class
    (MONAI's convention: an image without the class says nothing about its outline), then over classes."""

    def __init__(self, kind: str, classes: list[int]):
        self.kind, self.classes = kind, classes
        self.reset()

    def reset(self) -> None:
        self.sums = torch.zeros(len(self.classes), dtype=torch.float64)
        self.counts = torch.zeros(len(self.classes), dtype=torch.float64)

    def to(self, device):
        self.sums, self.counts = self.sums.to(device), self.counts.to(device)
        return self

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        labels = preds.argmax(1).flatten(1)
        target = target.flatten(1)
        for j, c in enumerate(self.classes):
            p, g = labels == c, target == c
            inter = (p & g).sum(1).double()
            ps, gs = p.sum(1).double(), g.sum(1).double()
            score = 2 * inter / (ps + gs) if self.kind == "dice" else inter / (ps + gs - inter)
            present = gs > 0
            self.sums[j] += torch.where(present, score, 0).sum()
            self.counts[j] += present.sum()

    def compute(self) -> torch.Tensor:
        seen = self.counts > 0
        if not seen.any():
            return torch.tensor(float("nan"))
        return (self.sums[seen] / self.counts[seen]).mean()
