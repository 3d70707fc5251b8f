"""The recipe contract (v2): what is domain-specific, and nothing else.

A recipe reads its data into datasets (fitting its preprocessing on the training split only),
builds a model, turns a batch into a loss and outputs, names its metrics and its baselines, and
turns raw inputs into prediction records. It never touches devices, precision, checkpoints,
schedules, progress or output locations: the core owns those.

The order the core calls things in:

    cfg = Recipe.resolve_config(cfg)            # train only: auto values fixed before config.yaml is written
    recipe = Recipe(cfg)                        # cheap: keeps cfg, may set `monitor` from it
    data = recipe.load_data(path, state)        # fits state on train (state=None) or applies a run's state
    recipe.setup(data.state, fresh)             # once the state is known: loss, tokenizer, pad id...
    model = recipe.build_model(state)           # `fresh` told setup whether this is a new training run
    recipe.step(model, batch, stage)            # stage: "train" | "val" | "test"
    recipe.metrics(state)                       # fresh torchmetrics Metric objects, each call
    recipe.baselines(data)                      # named predictors; the core scores them with metrics()
    recipe.eval_details(data, metrics, base)    # extras for eval.json's `details`
    recipe.read_inputs / predict_step / to_records / write_outputs   # predict, in chunks
    recipe.report_sections(data, tested, evaluation, folder)         # report: the recipe's own sections

A recipe keeps no state on `self` beyond its config (set in `__init__`) and what `setup` builds.

This module imports nothing heavy, so listing recipes stays cheap.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import torch
    from torch.utils.data import Dataset

STAGES = ("train", "val", "test")

# A baseline predictor: one collated test batch (on the CPU) -> {"preds": ..., "target": ...}, in the
# same form as `step` returns them, so the recipe's own metrics score it. Batches carry their "id"s,
# so a predictor may look up answers it prepared for the whole test set.
Baseline = Callable[[dict], dict]


@dataclass
class RecipeData:
    """Datasets yield dicts (tensors plus an 'id'); `state` is the fitted preprocessing (JSON-serialisable).

    `train_weights`, when set, gives each training example a sampling weight (e.g. to over-sample a rare
    class); the engine then draws batches with replacement from those weights, reproducibly.
    `extras` holds what `load_data` read that later hooks of the same job need (raw series for
    calibration, say): it is per job, never saved, and replaces stashing it on `self`.
    """

    train: Dataset | None
    val: Dataset | None
    test: Dataset | None
    state: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    train_weights: list[float] | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class Finding:
    """One line of `dlkit check`: what was looked at, how bad it is, what was found, what to do."""

    check: str
    severity: str  # "ok", "info", "warning" or "fatal" (fatal -> exit 2)
    message: str
    fix: str = ""


class Recipe(ABC):
    name: ClassVar[str]
    task: ClassVar[str]
    description: ClassVar[str]
    default_model: ClassVar[str]
    sample_data: ClassVar[str]  # relative to the project root, e.g. "sample_data/vision_classification"
    # Example `dlkit predict` inputs (relative to the project root, or absolute): the demo in README and
    # the every-recipe test predict on these from the run alone.
    sample_inputs: ClassVar[tuple[str, ...]] = ()
    # The validation metric that picks the best checkpoint (unless `select` says otherwise) and that the
    # verdict compares with the baselines. A class default; an instance may set its own in __init__ from
    # the config (the core always reads it from the instance).
    monitor: str = "accuracy"
    monitor_mode: str = "max"
    # What picks the best checkpoint and stops training early when it is not `monitor`: "loss" (the mean
    # validation loss, lower is better) or another validation metric. The verdict, eval.json and `dlkit
    # tune` stay on `monitor`.
    select: str | None = None
    select_mode: str = "min"
    # Config keys (exact, or prefixes ending in ".") that `evaluate`/`predict` may change besides the
    # shared inference-safe ones (device, data.batch_size, data.num_workers, train.amp, predict.*,
    # generate.*): e.g. a decision threshold. Every other key would change the fitted model.
    inference_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cfg: dict):
        self.cfg = cfg

    # --- config ------------------------------------------------------------------------------------
    @classmethod
    def config(cls) -> dict:
        """Recipe defaults: `opt(...)` for new keys, plain values to change a shared default.

        An `opt(...)` under a shared key replaces it, choices included: a recipe that accepts two
        losses declares `"loss": {"name": opt("cross_entropy", "...", ["cross_entropy", "focal"])}`,
        so `dlkit info` and the config check tell the truth.

        Built-in recipes keep this dict in a light `config.py` (`recipe_config()`, no torch imported)
        that this method returns, so `dlkit info` reads it without loading the recipe (dlkit/registry.py).
        """
        return {}

    @classmethod
    def resolve_config(cls, cfg: dict) -> dict:
        """Resolve 'auto' values (e.g. `train.lr: null` -> a number for this model) once, before the
        run's config.yaml is written; return the config (it may be changed in place)."""
        return cfg

    # --- data and model ----------------------------------------------------------------------------
    @abstractmethod
    def load_data(self, path: Path, state: dict | None = None, evaluate_all: bool = False) -> RecipeData:
        """Read and split the data. With `state` (from a run) apply it; without, fit it on train.

        `evaluate_all` (new labelled data given to `dlkit evaluate --data`) puts every example in `test`
        (or, when that data names its own splits, its test split).
        Splits come from `dlkit.data.splits` (split columns, files and folders; missing ones assigned).
        """

    def data_config(self, train_size: int) -> dict:
        """Values for keys left at `auto` that depend on the training-set size (batch size, width...),
        as nested {section: {key: value}}. A new training run applies them after `load_data` and
        before planning its steps and writing config.yaml, so the numbers a run used are on record.
        `self.cfg` still holds "auto" for them here. Default: nothing to size."""
        return {}

    def setup(self, state: dict, fresh: bool) -> None:  # noqa: B027
        """Build what depends on the fitted state (loss with class weights, tokenizer, pad id...).

        Called once per job, after the state is fitted or loaded and before `build_model`. `fresh` is
        True only for a new training run (not on resume, evaluate or predict): load backbone weights
        or warn about settings then, and only then.
        """

    @abstractmethod
    def build_model(self, state: dict) -> torch.nn.Module: ...

    @abstractmethod
    def step(self, model: torch.nn.Module, batch: dict, stage: str) -> dict:
        """One batch -> {'loss': scalar tensor, 'preds': ..., 'target': ...} (preds/target feed metrics).

        `stage` is "train", "val" (per-epoch validation: keep it cheap, e.g. greedy decoding) or "test"
        (the final evaluation: full quality, e.g. beam search).
        """

    @abstractmethod
    def metrics(self, state: dict) -> dict:
        """Name -> a fresh `torchmetrics.Metric` (custom ones subclass it with `add_state`, so they sync
        under DDP), updated with (preds, target); must include `monitor`."""

    @abstractmethod
    def baselines(self, data: RecipeData) -> dict[str, Baseline]:
        """Named baseline predictors: a trivial one and a strong classical one (majority class, copy the
        source, last value, logistic regression...). Fit them on `data.train` when it is there; at
        `dlkit evaluate` time (no training data) use what was fitted into the state."""

    def eval_details(self, data: RecipeData, metrics: dict, baselines: dict[str, dict]) -> dict:
        """Extras for eval.json's `details` (signatures, examples, significance tests, per-class tables).

        `metrics` are the model's computed Metric objects, `baselines` each baseline's, with their states
        still filled in (e.g. the hypotheses a BLEU metric kept).
        """
        return {}

    def confirm_win(self, details: dict, strongest: str) -> bool:
        """A stricter verdict than 'the monitored metric is better than the strongest baseline's'
        (e.g. a significance test in `details`); only asked when the model is better."""
        return True

    # --- predict -----------------------------------------------------------------------------------
    @abstractmethod
    def read_inputs(self, inputs: list[str], state: dict) -> Dataset:
        """Raw files/folders/rows for `predict` -> dataset of dicts with an 'id' and model inputs."""

    @abstractmethod
    def predict_step(self, model: torch.nn.Module, batch: dict) -> dict[str, torch.Tensor]: ...

    @abstractmethod
    def to_records(self, ids: list, outputs: dict[str, torch.Tensor], state: dict) -> list[dict]:
        """Turn one chunk of concatenated predict outputs into one JSON-able record per input. Pure."""

    def write_outputs(self, records: list[dict], outputs: dict, state: dict, out_dir: Path) -> None:  # noqa: B027
        """Write side files (masks, drawings, plots) for one chunk of predictions into `out_dir`.

        The core picks `out_dir` (beside `--output`, else RUN/predictions/<stamp>/) and calls this once
        per chunk: append, never assume one call sees every input. Records may gain keys naming the files.
        """

    # --- optional hooks ----------------------------------------------------------------------------
    @classmethod
    def tune_space(cls) -> dict:
        """A starting search space for `dlkit tune --example-space`: dotted config key -> one of
        {"choices": [...]}, {"int": {"low", "high", "step"}} or {"float": {"low", "high", "log"}}.
        The default searches the shared training keys; recipes add their own (width, depth, model...)."""
        return {
            "train.lr": {"float": {"low": 1e-4, "high": 1e-2, "log": True}},
            "train.weight_decay": {"float": {"low": 1e-5, "high": 1e-1, "log": True}},
            "data.batch_size": {"choices": [32, 64, 128]},
        }

    def check(self, path: Path) -> list[Finding]:
        """Pre-flight findings for `dlkit check`. The default tries to read and split the data.

        Recipes extend this (call super) with their own checks: schema, missing values, leakage...
        """
        from dlkit.errors import UserError

        try:
            data = self.load_data(path)
        except UserError as exc:
            return [Finding("data readable", "fatal", exc.message, exc.hint or "")]
        sizes = " / ".join(
            f"{len(d) if d is not None else 0} {n}"
            for n, d in (("train", data.train), ("val", data.val), ("test", data.test))
        )
        found = [Finding("data readable", "ok", f"{sizes} examples")]
        found += [Finding("data notes", "warning", note) for note in data.notes]
        return found

    def collate(self, items: list[dict]) -> dict:
        """Batch dataset items; the default stacks tensors and lists everything else (e.g. ids)."""
        from torch.utils.data import default_collate

        return default_collate(items)

    def train_batches(self, data: RecipeData, batch_size: int, generator: torch.Generator):
        """Only for recipes whose batches need a make-up (metric learning: P identities x K images
        each): a batch sampler over `data.train` (an iterable of index lists with a `len`), drawing
        every random choice from `generator`, which the engine reseeds each epoch so runs and resumes
        repeat. Not overridden (the default): shuffled batches, or `data.train_weights` sampling."""
        raise NotImplementedError

    def calibrate(self, ids: list, outputs: dict, data: RecipeData) -> dict:
        """Fit post-training parameters on validation predictions (e.g. a decision threshold).

        Returned keys are merged into the run's state before the final evaluation.
        """
        return {}

    def save_native(self, model: torch.nn.Module, state: dict, folder: Path) -> None:  # noqa: B027
        """Also save the trained model in its library's own format (e.g. Hugging Face) into `folder`."""

    def chat_batch(self, turns: list[dict]) -> dict | None:
        """For `dlkit chat`: the conversation so far ([{"role", "content"}, ...], the user's turn last) as one
        collated batch that `predict_step` answers; `to_records` then gives a record whose "response" is
        shown. Called after `setup`. Default None: this recipe does not chat (exit 2)."""
        return None

    def export_adapter(self, state: dict):
        """For `dlkit export` and `predict --backend onnx`: a `dlkit.export.ExportAdapter` saying which batch
        tensors feed the graph, what comes out, and how the exported graph stands in for the model in
        `predict_step`. Called after `setup`. The default: this recipe cannot be exported yet (exit 2)."""
        from dlkit.export.adapter import not_exportable

        raise not_exportable(self)

    def report_sections(
        self, data: RecipeData, tested: Iterable[dict], evaluation: dict, folder: Path
    ) -> list:
        """The recipe's own sections of `dlkit report` (confusion matrix, PR curve, overlays...).

        `evaluation` is the run's eval.json ({} when missing). `tested` runs the test split through
        `step(model, batch, "test")` lazily, one {"batch": the collated CPU batch, ids included, "preds",
        "target"} (on the CPU) per batch; each pass re-runs the model, nothing runs if it is not read.
        Save figures into `folder` with `dlkit.report.plots.save` and return `dlkit.report.Section`s.
        Default: no recipe sections.
        """
        return []
