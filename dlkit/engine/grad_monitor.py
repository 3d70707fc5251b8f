"""GradientMonitor: per-layer gradient norms, sampled without host syncs, judged once an epoch.

Vanishing gradients show as early layers receiving a tiny fraction of the gradient the last layers
get; exploding ones as huge or non-finite norms. Both are reported with what to try.
"""

from __future__ import annotations

import math

import torch


class GradientMonitor:
    def __init__(self, model: torch.nn.Module, vanish: float, explode: float):
        self.vanish, self.explode = vanish, explode
        names, params = [], []
        for name, p in model.named_parameters():
            if p.requires_grad:
                names.append(name)
                params.append(p)
        layers = list(dict.fromkeys(n.rsplit(".", 1)[0] if "." in n else n for n in names))
        index = {layer: i for i, layer in enumerate(layers)}
        self.layers = layers
        self.params = params
        self.layer_of = torch.tensor([index[n.rsplit(".", 1)[0] if "." in n else n] for n in names])
        self.reset()

    def reset(self) -> None:
        self._sum = self._max = self._nonfinite = None
        self.samples = 0

    def sample(self) -> None:
        """Accumulate squared per-layer norms of the current (unscaled, unclipped) gradients."""
        grads = [p.grad for p in self.params]
        if any(g is None for g in grads):
            keep = [i for i, g in enumerate(grads) if g is not None]
            if not keep:
                return
            grads = [grads[i] for i in keep]
            layer_of = self.layer_of[keep]
        else:
            layer_of = self.layer_of
        norms = torch.stack([n.float() for n in torch._foreach_norm(grads)])
        layer_of = layer_of.to(norms.device)
        sq = torch.zeros(len(self.layers), device=norms.device).index_add_(0, layer_of, norms.square())
        layer_norm = sq.sqrt()
        bad = (~torch.isfinite(layer_norm)).sum()
        clean = torch.nan_to_num(layer_norm, nan=0.0, posinf=0.0, neginf=0.0)
        if self._sum is None:
            self._sum, self._max, self._nonfinite = clean, clean.clone(), bad
        else:
            self._sum = self._sum + clean
            self._max = torch.maximum(self._max, clean)
            self._nonfinite = self._nonfinite + bad
        self.samples += 1

    def summary(self) -> tuple[dict, list[str]]:
        """Figures for metrics.jsonl and plain-language warnings; resets for the next epoch."""
        if not self.samples:
            return {}, []
        mean = (self._sum / self.samples).tolist()
        peak = self._max.tolist()
        nonfinite = int(self._nonfinite)
        self.reset()
        n = len(self.layers)
        k = max(1, n // 4)
        early = sum(mean[:k]) / k
        late = sum(mean[-k:]) / k
        figures = {
            "mean": sum(mean) / n,
            "max": max(peak),
            "early": early,
            "late": late,
            "nonfinite": nonfinite,
            "layers": dict(zip(self.layers, (float(f"{m:.4g}") for m in mean), strict=True)),
        }
        warnings = []
        worst = self.layers[max(range(n), key=lambda i: peak[i])]
        if nonfinite:
            warnings.append(
                f"exploding gradients: {nonfinite} non-finite layer norms (NaN/Inf); "
                "lower train.lr, keep train.grad_clip on, or try train.amp=off"
            )
        elif max(peak) > self.explode:
            warnings.append(
                f"exploding gradients: layer '{worst}' reached norm {max(peak):.3g} (> {self.explode:g}); "
                "lower train.lr or set train.grad_clip"
            )
        if late > 0 and math.isfinite(late) and early < self.vanish * late:
            first = ", ".join(self.layers[: min(3, k)])
            warnings.append(
                f"vanishing gradients: the earliest layers ({first}) get {early:.3g}, "
                f"{early / late:.2g}x the last layers' {late:.3g}; try model.init=kaiming, "
                "model.activation=relu/gelu, normalisation layers or a shallower net"
            )
        return figures, warnings
