"""The training loop on a tiny model: accumulation, schedules, precision, L1, health checks."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset
from torchmetrics.classification import MulticlassAccuracy

from dlkit.config import resolve
from dlkit.defaults import SHARED
from dlkit.engine.loop import fit
from dlkit.engine.optim import lr_factor
from dlkit.errors import JobError


class Blobs(Dataset):
    """Two Gaussian blobs in 8-D: a problem a linear model solves."""

    def __init__(self, n: int = 256, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.y = torch.randint(0, 2, (n,), generator=g)
        self.x = torch.randn(n, 8, generator=g) + (self.y[:, None] * 2 - 1) * 1.5

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"x": self.x[i], "y": self.y[i]}


def step(model, batch, stage="train"):
    logits = model(batch["x"])
    return {"loss": nn.functional.cross_entropy(logits, batch["y"]), "preds": logits, "target": batch["y"]}


def _cfg(*overrides: str) -> dict:
    from dlkit.config import parse_overrides

    return resolve(
        SHARED,
        None,
        parse_overrides(
            [
                "data.batch_size=16",
                "train.epochs=3",
                "train.log_every=4",
                "train.lr=0.02",
                "grad_monitor.every=1",
                *overrides,
            ]
        ),
    )


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))


def _fit(tmp_path, model, *overrides, step_fn=step):
    cfg = _cfg(*overrides)
    result = fit(
        model,
        step_fn,
        Blobs(),
        Blobs(64, seed=1),
        {"accuracy": MulticlassAccuracy(2, average="micro")},
        cfg,
        tmp_path,
        monitor="accuracy",
    )
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    return result, rows


def test_fit_learns_and_logs(tmp_path):
    result, rows = _fit(tmp_path, _model())
    assert rows[-1]["val_accuracy"] > 0.9 and result.best_value > 0.9
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert (tmp_path / "checkpoints/best.safetensors").exists()


def test_gradient_accumulation_matches_a_bigger_batch(tmp_path):
    a, b = _model(), _model()
    args = ["train.scheduler=none", "train.grad_clip=null", "train.epochs=1", "data.batch_size=256"]
    _fit(tmp_path / "a", a, *args)
    _fit(tmp_path / "b", b, *args[:-1], "data.batch_size=128", "train.grad_accum=2")
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(pa, pb, atol=1e-6)


def test_early_stopping(tmp_path):
    result, rows = _fit(tmp_path, _model(), "train.epochs=30", "train.patience=2", "train.lr=0.05")
    assert result.stopped_early and len(rows) < 30 and result.epochs_run == len(rows)


def test_bf16_autocast_on_cpu_and_sgd_with_step_schedule(tmp_path):
    result, rows = _fit(
        tmp_path,
        _model(),
        "train.amp=bf16",
        "train.optimizer=sgd",
        "train.lr=0.1",
        "train.scheduler=step",
        "train.step_every=1",
        "train.step_gamma=0.5",
    )
    assert rows[-1]["val_accuracy"] > 0.8
    assert rows[1]["lr"] == pytest.approx(rows[0]["lr"] * 0.5)


def test_l1_penalty_shrinks_weights(tmp_path):
    plain, sparse = _model(), _model()
    _fit(tmp_path / "a", plain, "train.weight_decay=0")
    _fit(tmp_path / "b", sparse, "train.weight_decay=0", "train.l1=0.01")
    assert sparse[0].weight.abs().sum() < 0.8 * plain[0].weight.abs().sum()


def test_lr_schedules():
    t = {"scheduler": "cosine", "warmup": 0.1, "step_every": 1, "step_gamma": 0.5}
    assert lr_factor(0, 100, t, 10) == pytest.approx(0.1)  # warming up
    assert lr_factor(9, 100, t, 10) == pytest.approx(1.0)
    assert lr_factor(99, 100, t, 10) < 0.05  # cosine ends near its floor
    assert lr_factor(30, 100, {**t, "scheduler": "step", "warmup": 0.0}, 10) == pytest.approx(0.125)
    one = {**t, "scheduler": "onecycle", "warmup": 0.0}
    assert lr_factor(10, 100, one, 10) < lr_factor(29, 100, one, 10) == pytest.approx(1.0)
    assert lr_factor(99, 100, one, 10) < 0.01
    assert lr_factor(50, 100, {**t, "scheduler": "none"}, 10) == 1.0


def test_nan_loss_stops_with_a_job_error(tmp_path):
    def nan_step(model, batch, stage):
        out = step(model, batch, stage)
        out["loss"] = out["loss"] * float("nan")
        return out

    with pytest.raises(JobError, match="loss became nan"):
        _fit(tmp_path, _model(), step_fn=nan_step)


def test_exploding_net_is_flagged_in_metrics(tmp_path):
    model = _model()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(300)
    _, rows = _fit(tmp_path, model, "train.epochs=1", "grad_monitor.explode=10")
    assert any("exploding gradients" in w for w in rows[0]["grad_warnings"])


def test_checkpoint_writer_keeps_order_and_raises_a_failed_write_on_the_training_thread(tmp_path):
    """Checkpoints are written in the background, in order, from a copy taken at the check: training
    may change the weights meanwhile, and a write that fails (full disk) stops training at the next
    check or at the end instead of passing silently."""
    from dlkit.engine import checkpoint

    model = nn.Linear(4, 2)
    writer = checkpoint.Writer()
    path = tmp_path / "last.safetensors"
    for value in (1.0, 2.0):
        with torch.no_grad():
            model.weight.fill_(value)
        tensors, meta = checkpoint.snapshot(model, {"step": int(value)})
        with torch.no_grad():
            model.weight.fill_(-9.0)  # a later step: not in the checkpoint
        writer.submit(lambda t=tensors, m=meta: checkpoint.write(path, t, m))
    writer.wait()
    meta, tensors = checkpoint.read(path)
    assert meta["step"] == 2 and torch.equal(tensors["model.weight"], torch.full((2, 4), 2.0))

    def full_disk():
        raise OSError(28, "No space left on device")

    writer.submit(full_disk)
    with pytest.raises(OSError, match="No space left"):
        writer.wait()
    writer.wait()  # raised once
