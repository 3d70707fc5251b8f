"""`dlkit predict`: inputs -> records, streamed chunk by chunk to a file (or stdout); side files go to a
folder the core picks (beside --output, else RUN/predictions/<stamp>/), never the current directory."""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from dlkit import console
from dlkit.errors import UserError
from dlkit.jobs.common import load_best, open_run
from dlkit.recipe import Recipe
from dlkit.run import Run

FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv"}


def side_dir(run: Run, output: Path | None) -> Path:
    """Where side files go: `<output stem>_outputs/` beside --output, else a new RUN/predictions/<stamp>/."""
    if output is not None:
        return output.parent / f"{output.stem}_outputs"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate, n = run.path / "predictions" / stamp, 2
    while candidate.exists():
        candidate, n = run.path / "predictions" / f"{stamp}-{n}", n + 1
    return candidate


class RecordWriter:
    """Streams records to JSONL, CSV or TSV; the file appears under its name only once complete."""

    def __init__(self, output: Path):
        kind = FORMATS.get(output.suffix.lower())
        if kind is None:
            raise UserError(f"--output '{output}' has an unknown extension", "use .jsonl, .csv or .tsv")
        output.parent.mkdir(parents=True, exist_ok=True)
        self.output, self.kind = output, kind
        self.partial = output.with_name(f".{output.name}.partial-{os.getpid()}")
        self.fh = open(self.partial, "w", newline="")
        self.csv: csv.DictWriter | None = None
        self.dropped: set[str] = set()

    def write(self, records: list[dict]) -> None:
        if self.kind == "jsonl":
            for r in records:
                self.fh.write(json.dumps(r) + "\n")
            return
        flat = [
            {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in r.items()} for r in records
        ]
        if self.csv is None:
            fields = list(dict.fromkeys(k for r in flat for k in r))
            delimiter = "\t" if self.kind == "tsv" else ","
            self.csv = csv.DictWriter(self.fh, fieldnames=fields, delimiter=delimiter, extrasaction="ignore")
            self.csv.writeheader()
        known = set(self.csv.fieldnames)
        self.dropped |= {k for r in flat for k in r if k not in known}
        self.csv.writerows(flat)

    def close(self, ok: bool) -> None:
        self.fh.close()
        if not ok:
            self.partial.unlink(missing_ok=True)
            return
        self.partial.replace(self.output)
        if self.dropped:
            console.warn(
                f"columns first seen after the first chunk were left out of {self.output}: "
                f"{', '.join(sorted(self.dropped))} (use .jsonl to keep every key)"
            )


def _cell(value):
    return json.dumps(value) if isinstance(value, (dict, list)) else value


def write_records(records: list[dict], output: Path) -> None:
    writer = RecordWriter(output)
    try:
        writer.write(records)
    except BaseException:
        writer.close(ok=False)
        raise
    writer.close(ok=True)


def print_records(records: list[dict]) -> None:
    for r in records:
        sys.stdout.write(json.dumps(r) + "\n")
    sys.stdout.flush()


def split_overrides(run_path: Path, items: list[str]) -> tuple[list[str], list[str]]:
    """Predict inputs vs `key=value` overrides: an override's key starts with a section or key of the
    run's recipe config (`device=cpu`, `predict.threshold=0.3`); anything else (an existing file such as
    `a=b.png`, a text such as "great=good") is an input."""
    from dlkit.jobs.common import schema_for
    from dlkit.registry import get_recipe

    top = set(schema_for(get_recipe(Run.open(run_path).recipe)))
    inputs, overrides = [], []
    for item in items:
        key = item.split("=", 1)[0].strip()
        is_override = "=" in item and key.split(".")[0] in top and " " not in key and not Path(item).exists()
        (overrides if is_override else inputs).append(item)
    return inputs, overrides


BACKENDS = ("torch", "onnx")


def torch_cpu():
    import torch

    return torch.device("cpu")


def onnx_model(run: Run, recipe: Recipe, state: dict):
    """The run's exported ONNX graph (RUN/exported/onnx) wrapped to stand in for the model in predict_step."""
    from dlkit.export.runtime import load_exported

    forward, _ = load_exported(run.path, "onnx")
    return recipe.export_adapter(state).as_model(forward)


def predict(
    run_path: Path,
    inputs: list[str],
    output: Path | None = None,
    overrides: list[str] | None = None,
    on_records: Callable[[list[dict]], None] | None = None,
    backend: str = "torch",
) -> dict:
    """Predict in chunks of `predict.chunk_size` examples. Records go to `output` (streamed), else to
    `on_records` per chunk, else into the result's `predictions`. Returns a summary.

    `backend="onnx"` runs the graph of `dlkit export RUN` in ONNX Runtime on the CPU in place of the model
    inside the recipe's `predict_step`: inputs, post-processing and records are the same code."""
    from dlkit.engine.device import amp_dtype, channels_last
    from dlkit.engine.inference import chunk_batches, predict_chunks
    from dlkit.engine.loaders import make_loader
    from dlkit.samples import resolve_input

    if backend not in BACKENDS:
        raise UserError(f"--backend {backend} is not known", f"choose one of: {', '.join(BACKENDS)}")
    run, recipe = open_run(run_path, list(overrides or []))
    cfg, state = recipe.cfg, run.state()
    recipe.setup(state, fresh=False)
    inputs = [resolve_input(item) for item in inputs]  # sample_data/... names work from a wheel too
    dataset = recipe.read_inputs(inputs, state)
    if len(dataset) == 0:
        raise UserError(f"no readable inputs among: {', '.join(inputs)}")
    if backend == "onnx":
        model, device = onnx_model(run, recipe, state), torch_cpu()
    else:
        model, device = load_best(run, recipe, state)
    writes_side_files = type(recipe).write_outputs is not Recipe.write_outputs
    folder = side_dir(run, output) if writes_side_files else None
    writer = RecordWriter(output) if output is not None else None
    kept: list[dict] = []
    count, ok = 0, False
    loader = make_loader(dataset, cfg, shuffle=False, collate=recipe.collate)
    try:
        for ids, outputs in predict_chunks(
            model,
            recipe.predict_step,
            loader,
            device,
            amp_dtype(cfg["train"]["amp"], device) if backend == "torch" else None,
            backend == "torch" and channels_last(cfg["train"]["channels_last"], model, device),
            chunk_batches(cfg),
        ):
            records = recipe.to_records(ids, outputs, state)
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
                recipe.write_outputs(records, outputs, state, folder)
            if writer is not None:
                writer.write(records)
            elif on_records is not None:
                on_records(records)
            else:
                kept.extend(records)
            count += len(records)
        ok = True
    finally:
        if writer is not None:
            writer.close(ok)
    if folder is not None and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()  # the recipe had nothing to write for these inputs
    if output is not None:
        console.info(f"wrote {count} predictions to {output}")
    if folder is not None and folder.exists():
        console.info(f"side files in {folder}")
    return {
        "run": str(run.path),
        "count": count,
        "output": str(output) if output is not None else None,
        "outputs_dir": str(folder) if folder is not None and folder.exists() else None,
        "predictions": kept if writer is None and on_records is None else None,
    }
