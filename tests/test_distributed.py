"""Data-parallel training: torchrun with two CPU processes (Gloo) shards batches; rank 0 writes the run."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

from conftest import ROOT


def test_torchrun_two_processes_on_cpu(tiny_images, tmp_path):
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port=29517",
        "-m",
        "dlkit",
        "train",
        "vision-classification",
        "--data",
        str(tiny_images),
        "--out",
        str(run),
        "--json",
        "train.epochs=2",
        "data.batch_size=8",
    ]
    done = subprocess.run(
        cmd, cwd=ROOT, env={**os.environ, "CI": "1"}, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(results) == 1 and results[0]["run"] == str(run)  # only rank 0 reports
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]  # only rank 0 logs
    train_images = 6 * 8  # tiny_images: 6 classes x 8 training images
    assert rows[0]["step"] == math.ceil(math.ceil(train_images / 2) / 8)  # each rank sees half the data
    assert json.loads((run / "manifest.json").read_text())["world_size"] == 2
    assert (run / "eval.json").is_file()
