"""What trains a face embedding: the network, the margin losses, batch-hard triplets, P x K batches.

- The network is any timm backbone whose classifier is replaced by a linear layer to the embedding
  size (so local timm weights load by name); the embedding is L2-normalised in `embed`.
- ArcFace (additive angular margin) and CosFace (additive cosine margin) train a cosine classifier over
  the training persons (`margin`, a submodule of the network so the optimizer and checkpoints carry
  it) and keep only the embedding; triplet needs no classifier and learns from P x K batches.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .config import DEFAULT_MARGIN, MARGIN_LOSSES


class MarginHead(nn.Module):
    """A cosine classifier over the training persons, with ArcFace's or CosFace's margin on the true one."""

    def __init__(
        self, dim: int, persons: int, kind: str, margin: float, scale: float, smoothing: float = 0.0
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(persons, dim))
        nn.init.normal_(self.weight, std=0.01)
        self.kind, self.margin, self.scale, self.smoothing = kind, margin, scale, smoothing

    def forward(self, embedding: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        cos = F.linear(embedding, F.normalize(self.weight.float(), dim=-1)).clamp(-1 + 1e-7, 1 - 1e-7)
        true = cos.gather(1, label[:, None])
        if self.kind == "arcface":
            # cos(theta + m); past theta = pi - m it would rise again, so fall back to CosFace's shape there
            shifted = true * math.cos(self.margin) - torch.sqrt(1 - true**2) * math.sin(self.margin)
            limit = math.cos(math.pi - self.margin)
            shifted = torch.where(true > limit, shifted, true - math.sin(math.pi - self.margin) * self.margin)
        else:
            shifted = true - self.margin
        logits = cos.scatter(1, label[:, None], shifted)
        return F.cross_entropy(self.scale * logits, label, label_smoothing=self.smoothing)


def batch_hard_triplet(embedding: torch.Tensor, label: torch.Tensor, margin: float) -> torch.Tensor:
    """Per anchor: its farthest same-person and nearest other-person embedding in the batch (Hermans et
    al., 2017), hinge on their distance gap. Anchors without a positive or a negative are left out."""
    dist = torch.cdist(embedding, embedding).float()
    same = label[:, None] == label[None, :]
    eye = torch.eye(len(label), dtype=torch.bool, device=label.device)
    positive = same & ~eye
    hardest_pos = dist.masked_fill(~positive, -1.0).amax(1)
    hardest_neg = dist.masked_fill(same, math.inf).amin(1)
    valid = positive.any(1) & (~same).any(1)
    if not valid.any():
        return embedding.sum() * 0.0
    return F.relu(hardest_pos - hardest_neg + margin)[valid].mean()


def build_network(name: str, dim: int, channels: int, dropout: float, persons: int, loss: dict) -> nn.Module:
    from dlkit.modeling import timm_classifier

    model = timm_classifier(name, dim, channels, dropout)
    _batch_norm_head(model, dim)
    if loss["name"] in MARGIN_LOSSES:
        margin = loss["margin"] if loss["margin"] is not None else DEFAULT_MARGIN[loss["name"]]
        model.add_module(
            "margin", MarginHead(dim, persons, loss["name"], margin, loss["scale"], loss["label_smoothing"])
        )
    return model


def _batch_norm_head(model: nn.Module, dim: int) -> None:
    """Follow the timm model's last linear layer with BatchNorm1d (as in ArcFace's reference networks):
    it centres the embeddings, so unseen persons spread over the sphere instead of crowding together."""
    path = model.pretrained_cfg.get("classifier", "fc")
    if isinstance(path, (list, tuple)):
        path = path[0]
    *parents, last = path.split(".")
    owner = model
    for part in parents:
        owner = getattr(owner, part)
    setattr(owner, last, nn.Sequential(getattr(owner, last), nn.BatchNorm1d(dim)))


def embed(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    return F.normalize(model(images).float(), dim=-1)


class PKBatches:
    """Batches of P persons x K images (P = batch_size // K), persons drawn without replacement while
    they last, images without replacement within a person (with, when a person has fewer than K).
    As many batches as a shuffled epoch would have; every draw comes from `generator`."""

    def __init__(self, labels: list[int], batch_size: int, per_person: int, generator: torch.Generator):
        groups: dict[int, list[int]] = {}
        for i, label in enumerate(labels):
            groups.setdefault(label, []).append(i)
        self.groups = [torch.tensor(g) for _, g in sorted(groups.items()) if len(g) >= 2]
        self.k = max(2, min(per_person, batch_size // 2))
        self.p = max(2, min(batch_size // self.k, len(self.groups)))
        self.generator = generator
        self.length = max(1, math.ceil(len(labels) / batch_size))

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        order = torch.empty(0, dtype=torch.long)
        for _ in range(self.length):
            if len(order) < self.p:
                order = torch.cat([order, torch.randperm(len(self.groups), generator=self.generator)])
            chosen, order = order[: self.p], order[self.p :]
            batch = []
            for g in chosen.tolist():
                members = self.groups[g]
                if len(members) >= self.k:
                    pick = torch.randperm(len(members), generator=self.generator)[: self.k]
                else:
                    pick = torch.randint(len(members), (self.k,), generator=self.generator)
                batch += members[pick].tolist()
            yield batch
