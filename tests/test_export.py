"""`dlkit export` (ONNX, TorchScript, native) with its parity check, and `dlkit predict --backend onnx`.

The default run trains one tiny image classifier (module fixture) and checks every format, int8, a failed
parity check, the refusals and the ONNX predict path on it; every other exportable recipe goes through
train -> export -> predict with both backends under `-m slow`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import ROOT, expect_user_error, train_ok

from dlkit.registry import get_recipe


@pytest.fixture(scope="module")
def vision_run(tmp_path_factory, tiny_images):
    """A tiny trained vision-classification run (6 classes, 72 images, one epoch)."""
    from _pytest.monkeypatch import MonkeyPatch

    from dlkit.cli import main

    out = tmp_path_factory.mktemp("export") / "vision"
    patch = MonkeyPatch()
    patch.setattr(
        sys,
        "argv",
        [
            "dlkit",
            "train",
            "vision-classification",
            "--data",
            str(tiny_images),
            "--out",
            str(out),
            "--json",
            "train.epochs=1",
            "data.batch_size=16",
            "model.name=resnet10t",
        ],
    )
    try:
        main()
    except SystemExit as exc:
        assert not exc.code, "training the fixture run failed"
    finally:
        patch.undo()
    return out


def _meta(run: Path, fmt: str) -> dict:
    return json.loads((run / "exported" / fmt / "export.json").read_text())


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _same(a, b, path: str = "") -> None:
    """Records equal, floats to 1e-4 (ONNX Runtime and PyTorch round differently), side files by name."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert a == pytest.approx(b, abs=1e-4, rel=1e-4), path
    elif isinstance(a, str) and "_outputs/" in a:
        assert Path(a).name == Path(b).name, path
    else:
        assert a == b, path


def _predict_both(cli, run: Path, inputs: list[str], out: Path) -> tuple[list[dict], list[dict]]:
    for backend in ("torch", "onnx"):
        res = cli("predict", run, *inputs, "--backend", backend, "--output", out / f"{backend}.jsonl")
        assert res.code == 0, res.err
    return _records(out / "torch.jsonl"), _records(out / "onnx.jsonl")


def test_onnx_export_parity_and_predict_backend(cli, vision_run, tiny_images, tmp_path):
    res = cli("export", vision_run, "--json")
    assert res.code == 0, res.err
    folder = vision_run / "exported" / "onnx"
    meta = _meta(vision_run, "onnx")
    assert json.loads(res.out)["status"] == meta["status"] == "ok"
    for name in ("model.onnx", "preprocess/state.json", "config.yaml"):
        assert (folder / name).is_file(), name
    assert meta["inputs"] == [{"name": "image", "shape": [1, 3, 32, 32], "dtype": "float32"}]
    assert meta["outputs"][0]["shape"] == [1, 6]
    assert meta["preprocessing"]["labels"] == sorted(p.name for p in (tiny_images / "train").iterdir())
    parity = meta["parity"]
    assert parity["examples"] > 0 and parity["max_abs_diff"] < 1e-3 and parity["agreement"] == 1.0

    # ONNX Runtime needs nothing but the file: the graph runs on its own and gives the same records
    import onnxruntime

    session = onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    inputs = [str(tiny_images / "test")]
    torch_records, onnx_records = _predict_both(cli, vision_run, inputs, tmp_path)
    assert len(torch_records) == len(onnx_records) == 12  # 6 classes x 2 test images: odd batches padded
    _same(torch_records, onnx_records)


def test_dynamic_batch_int8_and_torchscript(cli, vision_run):
    res = cli("export", vision_run, "--quantize", "int8", "--dynamic-batch", "--min-agreement", "0.5")
    assert res.code == 0, res.err
    meta = _meta(vision_run, "onnx")
    assert meta["graph"] == "model.int8.onnx" and meta["inputs"][0]["shape"][0] == "batch"
    assert (vision_run / "exported" / "onnx" / "model.int8.onnx").stat().st_size < (
        vision_run / "exported" / "onnx" / "model.onnx"
    ).stat().st_size / 2  # int8 weights
    assert meta["parity"]["precision"] == "int8" and meta["parity"]["agreement"] >= 0.5

    res = cli("export", vision_run, "--format", "torchscript")
    assert res.code == 0, res.err
    assert "max abs diff" in res.err and "prediction agreement 1.0000" in res.err
    meta = _meta(vision_run, "torchscript")
    assert meta["status"] == "ok" and meta["parity"]["max_abs_diff"] < 1e-4


def test_native_timm_checkpoint_loads_with_timm_alone(cli, vision_run):
    import timm
    import torch

    assert cli("export", vision_run, "--format", "native").code == 0
    meta = _meta(vision_run, "native")
    native = meta["native"]
    assert native["library"] == "timm" and "pretrained_cfg_overlay" in native["load"]
    folder = vision_run / "exported" / "native"
    model = timm.create_model(
        native["architecture"],
        pretrained=True,
        pretrained_cfg_overlay={"file": str(folder / "model.safetensors"), "num_classes": 6},
        **native["kwargs"],
    ).eval()
    logits = model(torch.zeros(2, 3, 32, 32))
    assert logits.shape == (2, 6) and meta["parity"]["max_abs_diff"] == 0.0


def test_failed_parity_keeps_files_and_blocks_predict(cli, vision_run, tiny_images, tmp_path):
    res = cli("export", vision_run, "--quantize", "int8", "--tolerance", "0")
    assert res.code == 1 and "Traceback" not in res.err
    assert "does not match" in res.err and "tolerance" in res.err
    meta = _meta(vision_run, "onnx")
    assert meta["status"] == "failed" and meta["problems"]
    assert (vision_run / "exported" / "onnx" / "model.int8.onnx").is_file()
    expect_user_error(
        cli("predict", vision_run, str(tiny_images / "test"), "--backend", "onnx"), "failed its parity check"
    )


def test_refusals(cli, vision_run, tiny_images, monkeypatch, tmp_path):
    expect_user_error(cli("export", vision_run, "--format", "tflite"), "--format tflite", "onnx")
    expect_user_error(cli("export", vision_run, "--format", "native", "--quantize", "int8"), "--format onnx")
    expect_user_error(cli("export", tmp_path / "nothing"), "nothing")
    bare = tmp_path / "bare"
    import shutil

    shutil.copytree(vision_run, bare, ignore=shutil.ignore_patterns("exported"))
    expect_user_error(
        cli("predict", bare, str(tiny_images / "test"), "--backend", "onnx"), "dlkit export", "--format onnx"
    )
    expect_user_error(cli("predict", bare, str(tiny_images / "test"), "--backend", "tf"), "--backend tf")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # the extra not installed
    expect_user_error(cli("export", vision_run), "pip install 'dlkit[export]'")


def test_recipes_without_an_adapter_say_so():
    from dlkit.errors import UserError
    from dlkit.recipe import Recipe

    cls = get_recipe("vision-classification")

    class Plain(cls):
        export_adapter = Recipe.export_adapter

    with pytest.raises(UserError, match="cannot be exported yet"):
        Plain({}).export_adapter({})
    exportable = [
        "vision-classification",
        "vision-detection",
        "nlp-sentiment",
        "nlp-translation",
        "tabular-fraud",
        "finance-forecasting",
        "medical-imaging",
    ]
    for name in exportable:
        assert get_recipe(name).export_adapter is not Recipe.export_adapter, name


# --- every other exportable recipe (slow: each trains once) --------------------------------------
CASES = {
    "tabular-fraud": (["train.epochs=1"], ("onnx", "torchscript")),
    "finance-forecasting": (["train.epochs=1"], ("onnx", "torchscript")),
    "nlp-sentiment": (["train.epochs=1"], ("onnx", "torchscript", "native")),
    "medical-imaging": (["train.epochs=1"], ("onnx", "torchscript")),
    "medical-imaging-2d": (["train.epochs=1", "mode=2d"], ("onnx", "torchscript")),
    "vision-detection": (["train.epochs=1"], ("onnx", "torchscript")),
    "nlp-translation": (["train.epochs=1", "generate.num_beams=1"], ("native",)),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_every_exportable_recipe(cli, tmp_path, case):
    name = case.removesuffix("-2d")
    overrides, formats = CASES[case]
    run = tmp_path / "run"
    train_ok(cli, name, run, *overrides)
    for fmt in formats:
        res = cli("export", run, "--format", fmt)
        assert res.code == 0, res.err
        parity = _meta(run, fmt)["parity"]
        assert parity["examples"] > 0 and parity["max_rel_diff"] < 1e-3 and parity["agreement"] >= 0.99
    if "onnx" not in formats:
        expect_user_error(cli("export", run, "--format", "onnx"), "cannot be exported as onnx yet")
        return
    res = cli("export", run)  # the ONNX export predict uses
    assert res.code == 0, res.err
    inputs = [str(p if Path(p).is_absolute() else ROOT / p) for p in get_recipe(name).sample_inputs]
    torch_records, onnx_records = _predict_both(cli, run, inputs, tmp_path)
    assert torch_records
    _same(torch_records, onnx_records)
