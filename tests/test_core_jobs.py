"""The core's side of the recipe contract: verdicts against the strongest baseline, inference-safe overrides,
streamed prediction chunks and record files that appear only when complete."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from conftest import train_ok

from dlkit.engine.inference import predict_chunks
from dlkit.errors import UserError
from dlkit.jobs.evaluation import judge, verdict_text
from dlkit.jobs.predict import RecordWriter, side_dir
from dlkit.run import Run


class _Judged:
    """Just what `judge` reads from a recipe."""

    def __init__(self, monitor: str, mode: str, significant: bool = True):
        self.monitor, self.monitor_mode, self.significant = monitor, mode, significant

    def confirm_win(self, details: dict, strongest: str) -> bool:
        return self.significant


def test_the_verdict_is_against_the_strongest_baseline():
    baselines = {"majority": {"accuracy": 0.5}, "logreg": {"accuracy": 0.8}}
    assert judge(_Judged("accuracy", "max"), {"accuracy": 0.7}, baselines, {}) == (False, "logreg")
    assert judge(_Judged("accuracy", "max"), {"accuracy": 0.9}, baselines, {}) == (True, "logreg")
    errors = {"naive": {"mase": 1.5}, "seasonal": {"mase": 1.1}}
    assert judge(_Judged("mase", "min"), {"mase": 1.2}, errors, {}) == (False, "seasonal")
    assert judge(_Judged("mase", "min"), {"mase": 0.9}, errors, {}) == (True, "seasonal")
    # better, but the recipe's stricter test (e.g. significance) says no
    assert judge(_Judged("mase", "min", significant=False), {"mase": 0.9}, errors, {}) == (False, "seasonal")
    assert judge(_Judged("bleu", "max"), {"bleu": 3.0}, {}, {}) == (None, None)


def test_the_verdict_is_said_plainly():
    result = {
        "monitor": "accuracy",
        "monitor_mode": "max",
        "strongest_baseline": "logreg",
        "metrics": {"accuracy": 0.7},
        "baselines": {"logreg": {"accuracy": 0.8}},
        "beats_baseline": False,
    }
    assert "the baseline logreg wins (accuracy 0.7000 vs 0.8000): the model does NOT beat it" in verdict_text(
        result
    )
    result |= {"metrics": {"accuracy": 0.85}}
    assert "not significantly" in verdict_text(result)
    result |= {"beats_baseline": True}
    assert verdict_text(result).startswith("the model beats the strongest baseline, logreg")


def test_predict_chunks_keep_order_join_tensors_and_extend_lists():
    data = [{"x": torch.tensor([float(i)]), "id": f"row{i}"} for i in range(10)]
    loader = torch.utils.data.DataLoader(data, batch_size=3)
    model = torch.nn.Identity()

    def step(model, batch):
        return {"double": model(batch["x"]) * 2, "names": [f"n{int(v)}" for v in batch["x"][:, 0]]}

    chunks = list(predict_chunks(model, step, loader, torch.device("cpu"), batches_per_chunk=2))
    assert [len(ids) for ids, _ in chunks] == [6, 4]
    ids = [i for chunk_ids, _ in chunks for i in chunk_ids]
    assert ids == [f"row{i}" for i in range(10)]
    first = chunks[0][1]
    assert first["double"].shape == (6, 1) and first["double"][5, 0] == 10.0
    assert first["names"] == [f"n{i}" for i in range(6)]


def test_predict_chunks_give_tensor_ids_as_plain_numbers():
    """A recipe whose batches carry ids as one tensor (tabular rows) gets a list of ints back, not a 0-d
    tensor per row (~500 bytes each: 750 MB for a 1.5-million-row validation split)."""
    data = [{"x": torch.tensor([float(i)]), "id": 100 + i} for i in range(5)]
    loader = torch.utils.data.DataLoader(data, batch_size=2)
    chunks = list(
        predict_chunks(torch.nn.Identity(), lambda m, b: {"y": m(b["x"])}, loader, torch.device("cpu"))
    )
    ids = [i for chunk_ids, _ in chunks for i in chunk_ids]
    assert ids == [100, 101, 102, 103, 104] and all(type(i) is int for i in ids)


@pytest.mark.parametrize(("suffix", "delimiter"), [(".csv", ","), (".tsv", "\t")])
def test_record_files_by_extension(tmp_path, suffix, delimiter):
    out = tmp_path / f"preds{suffix}"
    writer = RecordWriter(out)
    writer.write([{"id": 1, "label": "a", "top_k": [{"label": "a", "prob": 0.9}]}])
    writer.write([{"id": 2, "label": "b", "top_k": []}])
    assert not out.exists()  # appears under its name only once complete
    writer.close(ok=True)
    rows = list(csv.DictReader(out.open(), delimiter=delimiter))
    assert [r["label"] for r in rows] == ["a", "b"]
    assert json.loads(rows[0]["top_k"]) == [{"label": "a", "prob": 0.9}]


def test_a_failed_predict_leaves_no_output_file(tmp_path):
    out = tmp_path / "preds.jsonl"
    writer = RecordWriter(out)
    writer.write([{"id": 1}])
    writer.close(ok=False)
    assert list(tmp_path.iterdir()) == []


def test_unknown_output_extension_is_refused(tmp_path):
    with pytest.raises(UserError, match="use .jsonl, .csv or .tsv"):
        RecordWriter(tmp_path / "preds.xlsx")


def test_side_files_go_beside_the_output_or_into_a_new_run_folder(tmp_path):
    run = Run(tmp_path / "run")
    assert side_dir(run, tmp_path / "out" / "preds.csv") == tmp_path / "out" / "preds_outputs"
    first = side_dir(run, None)
    first.mkdir(parents=True)
    second = side_dir(run, None)
    assert first.parent == second.parent == run.path / "predictions" and first != second


def test_inference_overrides_name_the_refused_key(cli, tiny_images, tmp_path):
    run = tmp_path / "run"
    train_ok(cli, "vision-classification", run, "--data", tiny_images, "train.epochs=1")
    res = cli("predict", run, str(tiny_images / "test"), "train.lr=0.1", "--json")
    assert res.code == 2 and "config key 'train.lr' cannot be changed after training" in res.err
    res = cli("predict", run, str(tiny_images / "test"), "data.batch_szie=4")
    assert res.code == 2 and "did you mean 'data.batch_size'" in res.err
    res = cli(
        "predict", run, str(tiny_images / "test"), "data.batch_size=5", "predict.chunk_size=10", "--json"
    )
    assert res.code == 0, res.err
    assert json.loads(res.out)["count"] == len(list((tiny_images / "test").rglob("*.png")))
    before = (run / "eval.json").read_text()
    res = cli("evaluate", run, "data.batch_size=5", "--json")
    assert res.code == 0, res.err
    assert (run / "eval.json").read_text() == before  # only a plain evaluate rewrites the run's record
    from dlkit.jobs import split_overrides

    items = ["great=good", "device=cpu", "predict.chunk_size=3", str(tiny_images / "test")]
    assert split_overrides(run, items) == (["great=good", str(tiny_images / "test")], items[1:3])
