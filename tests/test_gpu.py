"""CUDA-only checks (skipped without a GPU): bf16 autocast and channels-last training end to end."""

from __future__ import annotations

import json

import pytest
from conftest import TINY


@pytest.mark.gpu
def test_train_on_cuda_with_bf16_and_channels_last(cli, tiny_images, tmp_path):
    run = tmp_path / "run"
    res = cli(
        "train",
        "vision-classification",
        "--data",
        tiny_images,
        "--out",
        run,
        "--json",
        "device=cuda",
        "train.amp=bf16",
        "train.channels_last=true",
        "train.epochs=2",
        *TINY,
    )
    assert res.code == 0, res.err
    assert json.loads((run / "manifest.json").read_text())["device"].startswith("cuda")
    res = cli("predict", run, tiny_images / "test")
    assert res.code == 0 and len(res.out.splitlines()) == 12
    res = cli("predict", run, tiny_images / "test", "device=cpu")  # trained on CUDA, predicted on a CPU
    assert res.code == 0 and len(res.out.splitlines()) == 12
    res = cli("evaluate", run, "device=cpu", "--json")
    assert res.code == 0 and json.loads(res.out)["beats_baseline"] is not None
