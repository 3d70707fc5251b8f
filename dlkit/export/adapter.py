"""What a recipe tells the exporter: which batch tensors feed the graph, what comes out, how the exported
graph stands in for the PyTorch model inside `predict_step`, and what "the same prediction" means.

The seam: a recipe's `predict_step(model, batch)` calls its model with tensors. An exported graph is a
plain function of tensors (`graph`); `as_model` wraps a runtime forward (ONNX Runtime, TorchScript) back
into something `predict_step` can call exactly like the PyTorch model, so reading inputs, collating,
post-processing, records and side files stay the recipe's one code path for every backend.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import torch

from dlkit.errors import UserError

if TYPE_CHECKING:
    from dlkit.recipe import Recipe

# A runtime forward: the graph's inputs (tensors, in `ExportAdapter.inputs` order) -> its outputs.
Forward = Callable[..., tuple[torch.Tensor, ...]]


class ExportAdapter:
    """Defaults fit a model called as `model(batch[inputs[0]], ...)` returning one tensor of class scores."""

    inputs: ClassVar[tuple[str, ...]] = ("image",)
    outputs: ClassVar[tuple[str, ...]] = ("logits",)
    # axes besides the batch that vary between inputs, per input/output name (e.g. sequence length)
    dynamic: ClassVar[dict[str, dict[int, str]]] = {}
    formats: ClassVar[tuple[str, ...]] = ("onnx", "torchscript")

    def __init__(self, recipe: Recipe, state: dict):
        self.recipe, self.state = recipe, state

    def graph(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module to export: tensors in (`inputs` order), a tensor or a tuple of tensors out."""
        return model

    def feed(self, batch: dict) -> tuple[torch.Tensor, ...]:
        """The graph's inputs from one collated batch (of predict inputs or of the test split)."""
        return tuple(batch[k] for k in self.inputs)

    def as_model(self, forward: Forward) -> torch.nn.Module:
        """What `predict_step` calls instead of the PyTorch model. Default: positional tensors -> the first
        output."""
        return CallModel(lambda *args: forward(*args)[0])

    def agreement(self, ref: tuple, got: tuple) -> tuple[int, int]:
        """(agreeing, compared) final predictions between two runs of the graph on one batch.
        Default: the arg-max class of the first output."""
        same = ref[0].argmax(-1) == got[0].argmax(-1)
        return int(same.sum()), same.numel()

    def describe(self) -> dict:
        """What inference needs besides the graph, for export.json (the whole state is copied too)."""
        return {}

    def write_files(self, folder: Path) -> list[str]:
        """Files inference needs beyond the run's state and config (e.g. a tokenizer); their names."""
        return []

    def save_native(self, model: torch.nn.Module, folder: Path) -> dict:
        """Write the model in its library's own format into `folder`; returns how to load it (JSON)."""
        raise UserError(
            f"recipe '{self.recipe.name}' has no native library format for this model",
            "use --format onnx or --format torchscript",
        )

    def load_native(self, folder: Path, native: dict) -> torch.nn.Module:
        """The model back from `folder` through its library (timm, transformers, torchvision), for parity;
        `native` is what `save_native` returned."""
        raise NotImplementedError


class CallModel(torch.nn.Module):
    """An nn.Module around a function: `predict_step` calls it (and `.eval()` on it) like the model."""

    def __init__(self, fn: Callable):
        super().__init__()
        self.fn = fn

    def forward(self, *args, **kwargs):
        return self.fn(*args, **kwargs)


def not_exportable(recipe: Recipe, why: str = "") -> UserError:
    """The answer for a recipe (or a model) that cannot be exported yet: exit 2, the reason, what to do."""
    return UserError(
        f"recipe '{recipe.name}' cannot be exported yet" + (f": {why}" if why else ""),
        f"predict with the run itself (dlkit predict RUN INPUTS); formats exist for: {', '.join(EXPORTABLE)}",
    )


EXPORTABLE = (
    "vision-classification",
    "vision-detection (centernet-tiny; torchvision detectors: native)",
    "nlp-sentiment",
    "nlp-translation (native)",
    "tabular-fraud",
    "finance-forecasting",
    "medical-imaging",
)
