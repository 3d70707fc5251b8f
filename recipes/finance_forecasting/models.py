"""The forecasting nets (an MLP, LSTM, GRU, TCN or transformer encoder over the past window) and losses."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class CausalBlock(nn.Module):
    """Two dilated causal convolutions with a residual connection (a TCN block)."""

    def __init__(self, channels: int, dilation: int, act: str, dropout: float):
        super().__init__()
        from dlkit.modeling import activation

        self.pad = 2 * dilation
        self.conv1 = nn.Conv1d(channels, channels, 3, dilation=dilation)
        self.conv2 = nn.Conv1d(channels, channels, 3, dilation=dilation)
        self.act, self.drop = activation(act), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.drop(self.act(self.conv1(F.pad(x, (self.pad, 0)))))
        return x + self.drop(self.act(self.conv2(F.pad(y, (self.pad, 0)))))


class Forecaster(nn.Module):
    """An encoder over the past window; a head that also sees the forecast dates' calendar.

    The head's last layer starts near zero, so before training the forecast is about "no change" (naive),
    or with `based` the classical forecast that comes as the last future feature: the net then learns a
    correction to it, and starts as good as it.
    """

    def __init__(
        self,
        kind: str,
        features: int,
        future: int,
        lookback: int,
        horizon: int,
        quantiles: int,
        hidden: int,
        layers: int,
        act: str,
        dropout: float,
        based: bool = False,
    ):
        super().__init__()
        from dlkit.modeling import activation

        self.kind, self.horizon, self.quantiles, self.based = kind, horizon, quantiles, based
        if kind == "mlp":
            dims = [lookback * features] + [hidden] * layers
            blocks = []
            for a, b in zip(dims[:-1], dims[1:], strict=True):
                blocks += [nn.Linear(a, b), activation(act), nn.Dropout(dropout)]
            self.encoder = nn.Sequential(nn.Flatten(), *blocks)
        elif kind in ("lstm", "gru"):
            rnn = nn.LSTM if kind == "lstm" else nn.GRU
            self.encoder = rnn(
                features, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0
            )
        elif kind == "tcn":
            depth = max(layers, math.ceil(math.log2((lookback - 1) / 4 + 1)))
            self.encoder = nn.Sequential(
                nn.Conv1d(features, hidden, 1),
                *[CausalBlock(hidden, 2**i, act, dropout) for i in range(depth)],
            )
        else:
            self.embed = nn.Linear(features, hidden)
            self.position = nn.Parameter(torch.zeros(1, lookback, hidden))
            layer = nn.TransformerEncoderLayer(
                hidden, 4 if hidden % 4 == 0 else 1, 2 * hidden, dropout, batch_first=True, norm_first=True
            )
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(
            nn.Linear(hidden + horizon * future, hidden),
            activation(act),
            nn.Dropout(dropout),
            nn.Linear(hidden, horizon * quantiles),
        )
        with torch.no_grad():  # near zero, not zero: gradients still reach the encoder from the first step
            self.head[-1].weight.mul_(0.01)
            self.head[-1].bias.zero_()

    def encode(self, past: torch.Tensor) -> torch.Tensor:
        if self.kind == "mlp":
            return self.encoder(past)
        if self.kind in ("lstm", "gru"):
            return self.encoder(past)[0][:, -1]
        if self.kind == "tcn":
            return self.encoder(past.transpose(1, 2))[:, :, -1]
        return self.encoder(self.embed(past) + self.position)[:, -1]

    def forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.encode(past), future.flatten(1)], 1)
        out = self.head(x).view(-1, self.horizon, self.quantiles)
        return out + future[..., -1:] if self.based else out


class PinballLoss(nn.Module):
    """The quantile (pinball) loss, averaged over quantiles, steps and windows: outputs (B, H, Q)."""

    def __init__(self, quantiles: list[float]):
        super().__init__()
        self.register_buffer("quantiles", torch.tensor(quantiles), persistent=False)

    def forward(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        q = self.quantiles.to(device=out.device, dtype=out.dtype)
        error = target.unsqueeze(-1) - out
        return torch.maximum(q * error, (q - 1) * error).mean()


class PointLoss(nn.Module):
    """MAE or MSE of the single output (B, H, 1) against the target (B, H)."""

    def __init__(self, loss: nn.Module):
        super().__init__()
        self.loss = loss

    def forward(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss(out[..., 0], target)
