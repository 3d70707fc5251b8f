"""A killed run, resumed, ends exactly where an uninterrupted run ends (bit-exact on CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, TINY
from safetensors.torch import load_file

from dlkit import jobs

ARGS = ["train.epochs=3", "train.patience=0", "model.dropout=0.2", *TINY]


class Killed(Exception):
    pass


def _stop_after(epoch_index: int):
    def hook(epoch: int, record: dict) -> None:
        if epoch == epoch_index:
            raise Killed

    return hook


def _metrics(run):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("seconds")
    return rows


def test_resume_equals_uninterrupted(tiny_images, tmp_path):
    full = tmp_path / "full"
    jobs.train("vision-classification", str(tiny_images), out=full, overrides=ARGS)

    cut = tmp_path / "cut"
    with pytest.raises(Killed):
        jobs.train(
            "vision-classification", str(tiny_images), out=cut, overrides=ARGS, on_epoch_end=_stop_after(0)
        )
    assert json.loads((cut / "metrics.jsonl").read_text().splitlines()[-1])["epoch"] == 1
    jobs.train("vision-classification", out=cut, overrides=[], resume=True)

    a = load_file(str(full / "checkpoints/last.safetensors"))
    b = load_file(str(cut / "checkpoints/last.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].equal(b[key]), key
    assert _metrics(full) == _metrics(cut)
    assert json.loads((full / "eval.json").read_text()) == json.loads((cut / "eval.json").read_text())


def test_existing_run_is_not_overwritten(cli, tiny_images, tmp_path):
    run = tmp_path / "run"
    assert (
        cli(
            "train", "vision-classification", "--data", tiny_images, "--out", run, "train.epochs=1", *TINY
        ).code
        == 0
    )
    before = (run / "checkpoints/last.safetensors").read_bytes()
    res = cli("train", "vision-classification", "--data", tiny_images, "--out", run, "train.epochs=1", *TINY)
    assert res.code == 2 and "already exists" in res.err and "--resume" in res.err
    assert (run / "checkpoints/last.safetensors").read_bytes() == before


def test_sigkill_leaves_a_resumable_run(tiny_images, tmp_path):
    """Kill -9 mid-training: every file present is complete, and --resume finishes the job."""
    run = tmp_path / "run"
    env = {**os.environ, "CI": "1"}
    cmd = [
        sys.executable,
        "-m",
        "dlkit",
        "train",
        "vision-classification",
        "--data",
        str(tiny_images),
        "--out",
        str(run),
        "train.epochs=30",
        "train.patience=0",
        *TINY,
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = run / "checkpoints" / "last.safetensors"
    deadline = time.time() + 120
    while time.time() < deadline and not last.exists():
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last.exists()
    load_file(str(last))  # complete and readable
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dlkit",
            "train",
            "vision-classification",
            "--out",
            str(run),
            "--resume",
            "train.epochs=3",
            "--json",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert not list(run.glob("checkpoints/.*tmp*"))  # a half-written temp file is cleaned up on resume
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == sorted(set(epochs)) and epochs[-1] >= 3
