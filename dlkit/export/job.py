"""`dlkit export RUN`: the run's best model as ONNX, TorchScript or its library's own format, in
RUN/exported/<format>/ with the run's fitted state and config beside it, an export.json describing inputs,
outputs, shapes, dtypes and preprocessing, and a parity check on the run's test split."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import torch

from dlkit import console
from dlkit.atomic import atomic_write_text
from dlkit.errors import JobError, UserError
from dlkit.export.adapter import ExportAdapter
from dlkit.export.parity import compare, torch_forward
from dlkit.extras import require
from dlkit.jobs.common import load_best, open_run, resolve_data_path

FORMATS = ("onnx", "torchscript", "native")
PARITY_EXAMPLES = 256
# defaults of --tolerance (max_rel_diff) and --min-agreement: float32 graphs must match the model to
# rounding; int8 weights move the numbers, so only the predictions are held to a (looser) line
TOLERANCE = {"fp32": 1e-3, "int8": 0.25}
MIN_AGREEMENT = {"fp32": 0.99, "int8": 0.9}


def _spec(names: tuple[str, ...], tensors: tuple[torch.Tensor, ...], adapter, dynamic_batch: bool) -> list:
    """Name, shape (variable axes by name) and dtype of each graph input or output."""
    out = []
    for name, t in zip(names, tensors, strict=True):
        shape: list = list(t.shape)
        if dynamic_batch and shape:
            shape[0] = "batch"
        for axis, label in adapter.dynamic.get(name, {}).items():
            shape[axis] = label
        out.append({"name": name, "shape": shape, "dtype": str(t.dtype).removeprefix("torch.")})
    return out


def parity_batches(recipe, state: dict, data: str | None):
    """Collated batches of the run's test split (its validation split when it has no test), on the CPU."""
    from dlkit.engine.loaders import make_loader

    path = resolve_data_path(data or recipe.cfg["data"]["path"], type(recipe))
    loaded = recipe.load_data(path, state)
    dataset = loaded.test if loaded.test is not None and len(loaded.test) else loaded.val
    if dataset is None or not len(dataset):
        raise UserError(
            f"'{path}' has no test examples for the parity check", "pass --data with labelled data"
        )
    cfg = dict(recipe.cfg, data=dict(recipe.cfg["data"], num_workers=0))
    return make_loader(dataset, cfg, shuffle=False, collate=recipe.collate)


def _fresh_folder(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def _copy_run_files(run_path: Path, folder: Path) -> list[str]:
    """The fitted state (label map, normalisation, tokenizer, thresholds, scaling...) and the config."""
    shutil.copytree(run_path / "preprocess", folder / "preprocess")
    shutil.copy2(run_path / "config.yaml", folder / "config.yaml")
    return ["preprocess/", "config.yaml"]


def _check(result: dict, tolerance: float, min_agreement: float) -> list[str]:
    problems = []
    if result["max_rel_diff"] > tolerance:
        problems.append(f"max relative difference {result['max_rel_diff']:.3g} > tolerance {tolerance:g}")
    if result["agreement"] < min_agreement:
        problems.append(f"prediction agreement {result['agreement']:.4f} < {min_agreement:g}")
    return problems


def export(
    run_path: Path,
    fmt: str = "onnx",
    opset: int = 17,
    dynamic_batch: bool = False,
    quantize: str | None = None,
    tolerance: float | None = None,
    min_agreement: float | None = None,
    data: str | None = None,
) -> dict:
    """Export, check parity, write export.json; JobError (exit 1) when parity fails, files kept."""
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt} is not known", f"choose one of: {', '.join(FORMATS)}")
    if quantize not in (None, "int8"):
        raise UserError(f"--quantize {quantize} is not known", "the one choice is --quantize int8")
    if quantize and fmt != "onnx":
        raise UserError("--quantize int8 works with --format onnx only", "add --format onnx")
    if fmt == "onnx":
        require("onnx", "export")
        require("onnxruntime", "export")
    run, recipe = open_run(run_path, ["device=cpu"])
    state = run.state()
    recipe.setup(state, fresh=False)
    adapter: ExportAdapter = recipe.export_adapter(state)
    if fmt not in adapter.formats:
        raise UserError(
            f"recipe '{recipe.name}' (model '{recipe.cfg['model'].get('name')}') cannot be exported as "
            f"{fmt} yet",
            f"formats for it: {', '.join(adapter.formats)}",
        )
    model, _ = load_best(run, recipe, state)
    model = model.cpu().eval()
    graph = adapter.graph(model).eval()
    loader = parity_batches(recipe, state, data)
    example = adapter.feed(next(iter(loader)))
    dynamic_batch = dynamic_batch or fmt != "onnx"  # a traced or native model takes any batch
    if not dynamic_batch:
        example = tuple(t[:1] for t in example)
    folder = run.path / "exported" / fmt
    _fresh_folder(folder)
    files = _copy_run_files(run.path, folder) + adapter.write_files(folder)
    precision = "int8" if quantize else "fp32"
    tolerance = TOLERANCE[precision] if tolerance is None else tolerance
    min_agreement = MIN_AGREEMENT[precision] if min_agreement is None else min_agreement
    meta: dict = {
        "format": fmt,
        "recipe": recipe.name,
        "model": recipe.cfg["model"].get("name"),
        "run": str(run.path),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
    }
    reference = torch_forward(graph)
    with torch.inference_mode():
        sample_out = reference(*example)
    if fmt == "native":
        meta["native"] = adapter.save_native(model, folder)
        meta["graph"] = meta["native"]["weights"]
        exported = torch_forward(adapter.graph(adapter.load_native(folder, meta["native"]).eval()).eval())
    elif fmt == "onnx":
        from dlkit.export import formats, runtime

        formats.write_onnx(
            graph,
            example,
            adapter.inputs,
            adapter.outputs,
            adapter.dynamic,
            dynamic_batch,
            opset,
            folder / "model.onnx",
        )
        meta.update(graph="model.onnx", opset=opset, onnxruntime=require("onnxruntime", "export").__version__)
        if quantize:
            formats.quantize_int8(folder / "model.onnx", folder / "model.int8.onnx")
            meta.update(graph="model.int8.onnx", fp32_graph="model.onnx", quantize="int8")
        exported = runtime.onnx_forward(runtime.onnx_session(folder / meta["graph"]), adapter.inputs)
    else:
        from dlkit.export import formats, runtime

        formats.write_torchscript(graph, example, folder / "model.pt")
        meta["graph"] = "model.pt"
        exported = runtime.load_exported_graph(folder / "model.pt")
    meta.update(
        dynamic_batch=dynamic_batch,
        inputs=_spec(adapter.inputs, example, adapter, dynamic_batch),
        outputs=_spec(adapter.outputs, sample_out, adapter, dynamic_batch),
        preprocessing=adapter.describe(),
        files=sorted({meta["graph"], meta.get("fp32_graph", meta["graph"]), *files}),
    )
    parity = compare(adapter, reference, exported, loader, PARITY_EXAMPLES)
    parity.update(tolerance=tolerance, min_agreement=min_agreement, precision=precision)
    problems = _check(parity, tolerance, min_agreement)
    meta.update(parity=parity, status="failed" if problems else "ok", problems=problems)
    atomic_write_text(folder / "export.json", json.dumps(meta, indent=2) + "\n")
    _print(meta, folder)
    if problems:
        raise JobError(
            f"the {fmt} export does not match the PyTorch model: {'; '.join(problems)}",
            f"files kept for inspection in {folder} (marked failed in export.json); loosen --tolerance / "
            "--min-agreement if this is expected (int8), or try another --opset",
        )
    return {"folder": str(folder), **meta}


def _print(meta: dict, folder: Path) -> None:
    p = meta["parity"]
    console.info(
        f"{meta['format']} export of {meta['recipe']} in {folder}: parity on {p['examples']} test examples - "
        f"max abs diff {p['max_abs_diff']:.3g}, max rel diff {p['max_rel_diff']:.3g}, "
        f"prediction agreement {p['agreement']:.4f} ({p['precision']}; {meta['status']})"
    )
