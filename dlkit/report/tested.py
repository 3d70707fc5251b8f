"""The test split run through the recipe's own `step(model, batch, "test")`, lazily, for recipe sections.

A recipe's report hook iterates these batches and keeps what it needs (a confusion matrix, the most
confident mistakes, a few images): nothing runs if it never asks, and memory stays at one batch.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from dlkit.recipe import Recipe, RecipeData


def to_cpu(value):
    """Tensors (also inside lists, tuples and dicts) detached onto the CPU; anything else as it is."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_cpu(v) for v in value)
    return value


class HeldOutBatches:
    """Iterable of {"batch": the collated CPU batch (with its ids), "preds", "target"} over the test split.

    Each pass re-runs the model, so a hook that needs the outputs twice should keep them itself.
    """

    def __init__(self, recipe: Recipe, data: RecipeData, model, device: torch.device):
        self.recipe, self.data, self.model, self.device = recipe, data, model, device

    def __iter__(self) -> Iterator[dict]:
        from dlkit.engine.device import amp_dtype, autocast, move
        from dlkit.engine.loaders import make_loader

        if self.data.test is None or len(self.data.test) == 0:
            return
        cfg = self.recipe.cfg
        loader = make_loader(self.data.test, cfg, shuffle=False, collate=self.recipe.collate)
        dtype = amp_dtype(cfg["train"]["amp"], self.device)
        self.model.eval()
        for batch in loader:
            with torch.inference_mode(), autocast(self.device, dtype):
                out = self.recipe.step(
                    self.model, move(batch, self.device, cfg["train"]["channels_last"]), "test"
                )
            yield {"batch": batch, "preds": to_cpu(out["preds"]), "target": to_cpu(out["target"])}
