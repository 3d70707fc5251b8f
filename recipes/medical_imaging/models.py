"""The nets this recipe builds itself, in 2D or 3D: a U-Net for segmentation, a plain CNN classifier, and
the soft Dice loss. One factory (`Ops`) picks the 2D or 3D layers, so every block is written once.

The U-Net uses instance normalisation, so it behaves the same with the batch of 2 that 3D volumes
allow on a small GPU as with a batch of 16 slices; the classifier uses batch normalisation (see
`SmallCNN`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from dlkit.modeling import activation


class Ops:
    """The 2D or 3D version of each layer kind: conv, max pool, transposed conv, batch/instance norm."""

    def __init__(self, dims: int):
        if dims not in (2, 3):
            raise ValueError(f"dims must be 2 or 3, not {dims}")
        self.dims = dims
        self.conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.pool = nn.MaxPool2d if dims == 2 else nn.MaxPool3d
        self.up = nn.ConvTranspose2d if dims == 2 else nn.ConvTranspose3d
        self.batch_norm = nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d
        self.instance_norm = nn.InstanceNorm2d if dims == 2 else nn.InstanceNorm3d

    def norm(self, kind: str, channels: int) -> nn.Module:
        return self.batch_norm(channels) if kind == "batch" else self.instance_norm(channels, affine=True)

    def block(self, cin: int, cout: int, act: str, norm: str = "instance") -> nn.Sequential:
        """Two 3x3(x3) convolutions, each followed by a norm layer and the activation."""
        return nn.Sequential(
            self.conv(cin, cout, 3, padding=1, bias=False),
            self.norm(norm, cout),
            activation(act),
            self.conv(cout, cout, 3, padding=1, bias=False),
            self.norm(norm, cout),
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
        ops = Ops(dims)
        widths = [channels * 2**i for i in range(depth)]
        self.factor = 2 ** (depth - 1)
        self.down = nn.ModuleList(
            ops.block(cin, w, act) for cin, w in zip([in_channels, *widths[:-1]], widths, strict=True)
        )
        self.pool = ops.pool(2)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.up = nn.ModuleList(
            ops.up(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(depth - 1))
        )
        self.decode = nn.ModuleList(
            ops.block(2 * widths[i], widths[i], act) for i in reversed(range(depth - 1))
        )
        self.head = ops.conv(widths[0], num_classes, 1)

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
        ops = Ops(dims)
        blocks: list[nn.Module] = []
        cin = in_channels
        for i in range(depth):
            w = channels * 2**i
            blocks += [ops.block(cin, w, act, norm)] + ([ops.pool(2)] if i < depth - 1 else [])
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
