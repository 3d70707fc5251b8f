"""The fraud MLP: embeddings of categoricals beside the numeric features, then an MLP -> 2 logits."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from dlkit.modeling import activation


class BatchNorm(nn.BatchNorm1d):
    """BatchNorm that uses its running statistics for a training batch of one row (a lone last batch)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] == 1:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        return super().forward(x)


class FraudMLP(nn.Module):
    """Embeddings of categoricals, concatenated with the numeric features, then an MLP -> 2 logits."""

    def __init__(
        self,
        numeric: int,
        cardinalities: list[int],
        depth: int,
        width: int,
        act: str,
        dropout: float,
        batch_norm: bool,
        embedding_dim: int,
        wide: bool = False,
    ):
        super().__init__()
        dims = [embedding_dim or min(16, (card + 1) // 2) for card in cardinalities]
        self.embeddings = nn.ModuleList(
            nn.Embedding(card, dim) for card, dim in zip(cardinalities, dims, strict=True)
        )
        layers: list[nn.Module] = []
        size = numeric + sum(dims)
        for _ in range(depth):
            layers += [
                nn.Linear(size, width),
                BatchNorm(width) if batch_norm else nn.Identity(),
                activation(act),
                nn.Dropout(dropout),
            ]
            size = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(size, 2)
        self.wide = nn.Linear(numeric + sum(dims), 2) if wide else None

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        parts = [numeric] + [emb(categorical[:, i]) for i, emb in enumerate(self.embeddings)]
        x = torch.cat(parts, dim=1) if len(parts) > 1 else numeric
        logits = self.head(self.body(x))
        return logits if self.wide is None else logits + self.wide(x)


class SeedEnsemble(nn.Module):
    """`members` MLPs of the same shape, each with its own initial weights and dropout, trained side by
    side on the same batches with their own losses; their predicted probabilities are averaged.

    On a few hundred rows one MLP's test AUPRC swings by a few points with the seed alone; averaging five
    is the cheapest variance cut there is (they are tiny), and it is what lifts the MLP level with logistic
    regression on small real tables (bench/quality). Training mode returns every member's logits
    (members, batch, 2) so each member learns on its own; evaluation returns the log of the averaged
    probabilities (batch, 2), which softmax maps back to them, so predict and export see one model.
    """

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        logits = torch.stack([member(numeric, categorical) for member in self.members])
        if self.training:
            return logits
        return torch.logsumexp(logits.float().log_softmax(-1), dim=0) - math.log(len(self.members))
