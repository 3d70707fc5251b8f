"""The parity check: the exported graph and the PyTorch model on the same real test inputs.

Differences are taken on the graph's raw outputs (logits, scaled forecasts, heatmaps):
`max_abs_diff` is the largest |exported - torch| over every element, `max_rel_diff` that difference over
the largest |torch| value of the same output (a scale-free figure). `agreement` is the share of final
predictions (labels, thresholded scores, pixels, boxes, forecasts) that come out the same, as the recipe's
adapter defines it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from dlkit.export.adapter import ExportAdapter


@torch.inference_mode()
def compare(
    adapter: ExportAdapter,
    reference: Callable[..., tuple[torch.Tensor, ...]],
    exported: Callable[..., tuple[torch.Tensor, ...]],
    batches: Iterable[dict],
    limit: int,
) -> dict:
    """Differences and agreement over up to `limit` examples of `batches`."""
    abs_diff = rel_diff = 0.0
    agree = total = examples = 0
    per_output = {name: 0.0 for name in adapter.outputs}
    for batch in batches:
        feed = adapter.feed(batch)
        ref = reference(*feed)
        got = exported(*feed)
        for name, r, g in zip(adapter.outputs, ref, got, strict=True):
            r, g = r.float(), g.float()
            diff = float((r - g).abs().max()) if r.numel() else 0.0
            scale = float(r.abs().max()) if r.numel() else 0.0
            per_output[name] = max(per_output[name], diff)
            abs_diff = max(abs_diff, diff)
            rel_diff = max(rel_diff, diff / max(scale, 1e-6))
        a, n = adapter.agreement(ref, got)
        agree, total = agree + a, total + n
        examples += len(feed[0])
        if examples >= limit:
            break
    return {
        "examples": examples,
        "max_abs_diff": abs_diff,
        "max_rel_diff": rel_diff,
        "max_abs_diff_per_output": per_output,
        "agreement": agree / total if total else 1.0,
        "compared": total,
    }


def torch_forward(graph: torch.nn.Module) -> Callable[..., tuple[torch.Tensor, ...]]:
    """The PyTorch graph as a function with the runtime's calling convention (a tuple out)."""

    def run(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = graph(*tensors)
        return tuple(out) if isinstance(out, (tuple, list)) else (out,)

    return run
