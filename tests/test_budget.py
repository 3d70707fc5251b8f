"""Training budgets by optimizer steps: `epochs: auto`, checks within long epochs, caps, resume."""

from __future__ import annotations

import json

import pytest
import torch
from test_engine import Blobs, _cfg, _fit, _model

from dlkit.engine import budget
from dlkit.errors import UserError

AUTO = {"epochs": "auto", "min_steps": 600, "max_epochs": 100, "max_steps": None, "val_every": "auto"}


@pytest.mark.parametrize(
    ("examples", "batch", "epochs", "steps"),
    [
        (400, 32, 47, 13),  # a few hundred examples: enough epochs for min_steps
        (40, 32, 100, 2),  # tiny: capped at max_epochs
        (2_000_000, 64, 1, 31250),  # millions: one epoch, no more
    ],
)
def test_auto_epochs_follow_the_data_size(examples, batch, epochs, steps):
    assert budget.steps_per_epoch(examples, batch) == steps
    resolved = budget.resolve(AUTO, steps)
    assert resolved["epochs"] == epochs
    assert resolved["epochs"] * steps >= 600 or resolved["epochs"] == 100
    assert resolved["val_every"] == min(steps, budget.LONG_EPOCH)  # long epochs are checked within


def test_steps_per_epoch_counts_accumulation_and_processes():
    assert budget.steps_per_epoch(1000, 10, grad_accum=4) == 25
    assert budget.steps_per_epoch(1000, 10, world_size=4) == 25  # each process sees a quarter
    assert budget.resolve({**AUTO, "epochs": 7, "val_every": 5}, 40) == {**AUTO, "epochs": 7, "val_every": 5}
    with pytest.raises(UserError, match="val_every"):
        budget.resolve({**AUTO, "val_every": 0}, 40)


def test_patience_waits_for_min_steps_or_half_the_plan():
    assert budget.patience_floor({**AUTO, "epochs": 50}, 20) == 500  # 1000 planned: half
    assert budget.patience_floor({**AUTO, "epochs": 100}, 20) == 600  # 2000 planned: min_steps


def test_checks_within_an_epoch_and_a_step_cap(tmp_path):
    # 256 examples / 16 = 16 steps an epoch, checked every 5 steps and at the epoch's end
    result, rows = _fit(
        tmp_path, _model(), "train.epochs=2", "train.val_every=5", "train.max_steps=23", "train.patience=0"
    )
    assert [r["step"] for r in rows] == [5, 10, 15, 16, 21, 23]
    assert [r["epoch"] for r in rows] == [0.312, 0.625, 0.938, 1, 1.312, 1.438]
    assert result.steps == 23 and result.epochs_run == 1.438 and not result.stopped_early
    assert rows[-1]["val_accuracy"] > 0.9


def test_auto_budget_and_patience_counted_in_checks(tmp_path):
    result, rows = _fit(
        tmp_path, _model(), "train.epochs=auto", "train.min_steps=40", "train.patience=1", "train.lr=0.05"
    )
    # 16 steps an epoch -> 3 epochs planned; never stopped before step 24 (half the plan)
    assert rows[0]["step"] == 16 and len(rows) >= 2 and rows[-1]["step"] <= 48
    assert result.epochs_run == len(rows)


def test_resume_within_an_epoch_matches_an_uninterrupted_run(tmp_path):
    args = ["train.epochs=2", "train.val_every=5", "train.scheduler=cosine"]
    full = _model()
    _, want = _fit(tmp_path / "full", full, *args)

    class Stop(Exception):
        pass

    def stop_after_two_checks(epoch, record):
        if record["step"] == 10:
            raise Stop

    from torchmetrics.classification import MulticlassAccuracy

    from dlkit.engine.loop import fit

    cut = tmp_path / "cut"
    metrics = {"accuracy": MulticlassAccuracy(2, average="micro")}
    with pytest.raises(Stop):
        fit(
            _model(),
            _step(),
            Blobs(),
            Blobs(64, seed=1),
            metrics,
            _cfg(*args),
            cut,
            "accuracy",
            on_epoch_end=stop_after_two_checks,
        )
    resumed = _model(seed=5)  # different init: everything must come from the checkpoint
    fit(resumed, _step(), Blobs(), Blobs(64, seed=1), metrics, _cfg(*args), cut, "accuracy", resume=True)
    got = [json.loads(line) for line in (cut / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in got] == [r["step"] for r in want]
    assert [r["train_loss"] for r in got] == pytest.approx([r["train_loss"] for r in want], abs=1e-6)
    for a, b in zip(full.parameters(), resumed.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def _step():
    from test_engine import step

    return step
