"""Shared fixtures: offline, quiet, seeded; a tiny image set; running the real CLI in-process."""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("CI", "1")  # no live progress bars in tests
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Parallel workers (`-n`): one intra-op thread each, in this process and every dlkit it starts, so
    # two workers on two cores do not spin against each other (dlkit's `threads: auto` honours it).
    os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_VISION = ROOT / "sample_data" / "vision_classification"
TINY = ["data.batch_size=16", "train.log_every=2", "grad_monitor.every=1"]


@pytest.fixture(autouse=True)
def slow_only_when_asked(request):
    """`slow` tests run only under `-m slow` (the default suite stays fast)."""
    if request.node.get_closest_marker("slow") and "slow" not in request.config.getoption("markexpr"):
        pytest.skip("slow: run with -m slow")


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run `dlkit ARGS...` through the real entry point; returns exit code, stdout, stderr."""
    from dlkit import console
    from dlkit.cli import main

    def run(*args: str) -> Result:
        monkeypatch.setattr(sys, "argv", ["dlkit", *map(str, args)])
        console.set_quiet(False)
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def tiny_images(tmp_path_factory) -> Path:
    """train/val/test class folders, 6 classes x 12 images, made by the sample-data generator."""
    out = tmp_path_factory.mktemp("tiny_images")
    load_sample_generator("vision_classification").generate(out, seed=1, per_class=12)
    return out


@pytest.fixture
def flat_images(tmp_path, tiny_images) -> Path:
    """The same images in one folder of class folders (no split folders)."""
    import shutil

    out = tmp_path / "flat"
    for split in ("train", "val", "test"):
        for cls_dir in (tiny_images / split).iterdir():
            (out / cls_dir.name).mkdir(parents=True, exist_ok=True)
            for f in cls_dir.iterdir():
                shutil.copy(f, out / cls_dir.name / f"{split}_{f.name}")
    return out


def expect_user_error(res: Result, *fragments: str) -> None:
    """A user mistake: exit 2, no traceback, and the message names each fragment (rich may wrap lines)."""
    assert res.code == 2, (res.code, res.err)
    assert "Traceback" not in res.err
    text = " ".join(res.err.split())
    for f in fragments:
        assert f in res.err or f in text, res.err


def load_sample_generator(name: str):
    """The module `sample_data/make_<name>.py` (each has a `generate(out, seed=..., ...)`)."""
    spec = importlib.util.spec_from_file_location(f"make_{name}", ROOT / "sample_data" / f"make_{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_ok(cli, recipe: str, out: Path, *args: str) -> dict:
    """`dlkit train RECIPE --out OUT --json ARGS...`, asserting success; the JSON result."""
    import json

    res = cli("train", recipe, "--out", out, "--json", *args)
    assert res.code == 0, res.err
    return json.loads(res.out)
