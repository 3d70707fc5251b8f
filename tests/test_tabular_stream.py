"""tabular-fraud on tables larger than memory: a small table forced down the streaming path
(`data.stream_above=0`, chunks of 500 rows) trains, evaluates and predicts; its splits are seeded,
chunk-independent and keep identical rows together; the cleaning fitted on the streamed sample equals the
in-memory fit on the same rows; a bad value in a late chunk is named before training starts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import ROOT, expect_user_error, load_sample_generator, train_ok
from dlkit_recipes.tabular_fraud import stream, stream_scan
from dlkit_recipes.tabular_fraud.config import STREAM_BINS
from dlkit_recipes.tabular_fraud.data import sources
from dlkit_recipes.tabular_fraud.metrics import fraud_metrics
from dlkit_recipes.tabular_fraud.stream_scan import TEST, TRAIN, VAL, make_plan, scan

from dlkit import console
from dlkit.data.cleaning import CleaningPipeline
from dlkit.jobs.common import build_config
from dlkit.registry import get_recipe

NEW = ROOT / "sample_data" / "tabular_fraud" / "new_transactions.csv"
STREAM = ["data.stream_above=0", "train.max_steps=40", "train.log_every=10", "report.enabled=false"]


@pytest.fixture(scope="module", autouse=True)
def small_chunks():
    """Chunks of 500 rows and a shuffle buffer of 600, so a 3,000-row table spans many of both."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stream_scan, "CHUNK_ROWS", 500)
        mp.setattr(stream, "SHUFFLE_ROWS", 600)
        yield


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    """3,036 messy transactions at 5% fraud, then the first 200 of them again at the end (a later chunk)."""
    out = tmp_path_factory.mktemp("stream_fraud")
    made = load_sample_generator("tabular_fraud").generate(
        out, seed=1, rows=3000, new_rows=40, prevalence=0.05
    )
    frame = pd.read_csv(made["transactions"])
    path = out / "repeats.csv"
    pd.concat([frame, frame.iloc[:200]], ignore_index=True).to_csv(path, index=False)
    return path


def _cfg(*overrides: str) -> dict:
    return build_config(get_recipe("tabular-fraud"), None, ["data.stream_above=0", *overrides])


def _scan(path: Path, cfg: dict, sample: int = 0):
    return scan(make_plan(sources(path), cfg), sample)


def _train_stream(path: Path, cfg: dict) -> stream.SplitStream:
    """The training split as a stream, cleaned by a pipeline fitted on all its rows."""
    found = _scan(path, cfg, sample=10_000)
    pipeline = CleaningPipeline.fit(found.samples[TRAIN], cfg["clean"], ["is_fraud", "split"])
    plan = make_plan(sources(path), cfg)
    return stream.SplitStream(plan, TRAIN, {"columns": pipeline.columns}, ["0", "1"], found.rows(TRAIN))


def _splits(path: Path, cfg: dict) -> np.ndarray:
    """TRAIN/VAL/TEST of every row, chunk by chunk, as the streams assign them."""
    plan = make_plan(sources(path), cfg)
    return np.concatenate([plan.assign(split, source, chunk) for split, source, chunk in plan.chunks()])


@pytest.fixture(scope="module")
def streamed_run(table, tmp_path_factory) -> tuple[Path, dict]:
    from dlkit import jobs

    run = tmp_path_factory.mktemp("stream_runs") / "run"
    console.set_quiet(True)
    try:
        result = jobs.train("tabular-fraud", data=str(table), out=run, overrides=STREAM)
    finally:
        console.set_quiet(False)
    return run, result


def test_streamed_training_evaluates_and_predicts_from_the_run(cli, streamed_run, table, tmp_path):
    run, result = streamed_run
    state = json.loads((run / "preprocess" / "state.json").read_text())
    counts = state["counts"]
    assert sum(c["rows"] for c in counts.values()) == len(pd.read_csv(table))
    assert state["stream"]["train_rows"] == counts["train"]["rows"] == state["stream"]["sample_rows"]
    report = json.loads((run / "eval.json").read_text())
    assert report["examples"] == counts["test"]["rows"]
    assert report["details"]["fraud_in_test"] == counts["test"]["fraud"]
    assert report["details"]["streamed"]["carve"] == {"val": 0.15, "test": 0.15}
    assert report["details"]["streamed"]["score_bins"] == STREAM_BINS
    assert report["metrics"]["auroc"] > 0.75  # 40 steps learn something; the prevalence baseline is 0.5
    again = json.loads(cli("evaluate", run, "--json").out)
    assert again["metrics"] == report["metrics"]  # rebuilt from the run: the same split, the same rows
    out = tmp_path / "scores.jsonl"
    assert cli("predict", run, NEW, "--output", out).code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == len(pd.read_csv(NEW)) and all(0 <= r["score"] <= 1 for r in rows)


def test_splits_are_seeded_chunk_independent_and_keep_identical_rows_together(table, monkeypatch):
    cfg, rows = _cfg(), len(pd.read_csv(table))
    split_of = _splits(table, cfg)
    assert 0.12 < np.mean(split_of == TEST) < 0.18 and 0.12 < np.mean(split_of == VAL) < 0.18
    found = _scan(table, cfg)
    assert [found.rows(p) for p in (TRAIN, VAL, TEST)] == [
        int(np.sum(split_of == p)) for p in (TRAIN, VAL, TEST)
    ]
    assert np.array_equal(found.row_ids(VAL), np.flatnonzero(split_of == VAL))
    monkeypatch.setattr(stream_scan, "CHUNK_ROWS", 1 << 20)  # one chunk: the same rows in each split
    assert np.array_equal(_splits(table, cfg), split_of)
    assert not np.array_equal(_splits(table, _cfg("seed=7")), split_of)  # the seed decides
    assert len(split_of) == rows and np.array_equal(split_of[:200], split_of[-200:])  # repeats together


def test_training_rows_stream_once_each_in_a_seeded_shuffled_order(table):
    train = _train_stream(table, _cfg())
    in_order = [int(row["id"]) for row in train]
    assert len(in_order) == len(train) and in_order == sorted(in_order)

    def epoch(seed: int) -> list[int]:
        train.shuffle_with(torch.Generator().manual_seed(seed))
        return [int(row["id"]) for row in train]

    first = epoch(1)
    assert sorted(first) == in_order and first != in_order
    assert epoch(1) == first and epoch(2) != first
    position = {row: at for at, row in enumerate(first)}
    assert max(position[row] for row in in_order[:600]) > 1200  # a row of the first buffer drifts on


def test_cleaning_fitted_in_the_streaming_pass_equals_the_in_memory_fit(table):
    cfg = _cfg()
    found = _scan(table, cfg, sample=10_000)  # the sample holds every training row
    frame = pd.read_csv(table)
    train_rows = np.flatnonzero(_splits(table, cfg) == TRAIN)
    streamed = CleaningPipeline.fit(found.samples[TRAIN], cfg["clean"], ["is_fraud", "split"])
    in_memory = CleaningPipeline.fit(frame.iloc[train_rows], cfg["clean"], ["is_fraud", "split"])
    assert streamed.to_state()["columns"] == in_memory.to_state()["columns"]
    assert found.rows(TRAIN) == len(train_rows)
    assert found.label_counts[TRAIN]["1"] == int(frame["is_fraud"].iloc[train_rows].sum())


def test_a_bounded_sample_is_uniform_and_seeded(table):
    cfg = _cfg()
    one, two = _scan(table, cfg, sample=400), _scan(table, cfg, sample=400)
    sample = one.samples[TRAIN]
    assert len(sample) == 400 and sample.index.equals(two.samples[TRAIN].index)
    assert sample.index.max() > 2500 and sample.index.min() < 500  # drawn from every chunk


def test_a_bad_value_in_a_late_chunk_is_named_before_training(cli, table, tmp_path):
    frame = pd.read_csv(table)
    frame["amount"] = frame["amount"].astype(object)
    frame.loc[2870, "amount"] = "12 EUR"
    bad = tmp_path / "late_bad.csv"
    frame.to_csv(bad, index=False)
    res = cli("train", "tabular-fraud", "--data", bad, "--out", tmp_path / "run", *STREAM)
    expect_user_error(res, "column 'amount'", "row 2871", "'12 EUR'", "clean.types.amount=categorical")
    assert not (tmp_path / "run").exists()


def test_check_streams_a_big_table_counting_every_row_and_naming_a_bad_value(cli, table, tmp_path):
    res = cli("check", "tabular-fraud", "--data", table, "data.stream_above=0", "--json")
    assert res.code == 0, res.err
    found = {f["check"]: f for f in json.loads(res.out)["findings"]}
    rows = len(pd.read_csv(table))
    assert f"{rows:,} labelled rows" in found["streamed"]["message"]
    counts = [int(n) for n in re.findall(r" (\d+) \(", found["class balance"]["message"])]
    assert sum(counts) == rows  # exact, from the pass: not the sample's
    assert {"column types", "missing values"} <= set(found)
    frame = pd.read_csv(table)
    frame["amount"] = frame["amount"].astype(object)
    frame.loc[2870, "amount"] = "12 EUR"
    frame.to_csv(tmp_path / "late_bad.csv", index=False)
    res = cli("check", "tabular-fraud", "--data", tmp_path / "late_bad.csv", "data.stream_above=0", "--json")
    assert res.code == 2
    fatal = [f for f in json.loads(res.out)["findings"] if f["severity"] == "fatal"]
    assert len(fatal) == 1 and "row 2871" in fatal[0]["message"] and "'12 EUR'" in fatal[0]["message"]


def test_options_that_need_the_whole_table_are_refused_when_streaming(cli, table, tmp_path):
    for option in ("imbalance=sampling", "clean.drop_duplicates=true"):
        res = cli("train", "tabular-fraud", "--data", table, "--out", tmp_path / "run", *STREAM, option)
        expect_user_error(res, option.split("=")[0], "streamed", "data.stream_above")


def test_small_tables_keep_the_in_memory_path(table):
    cfg = build_config(get_recipe("tabular-fraud"), None, [])
    assert not stream.streams(sources(table), cfg, None)
    assert stream.streams(sources(table), _cfg(), None)


def test_a_streamed_run_trains_like_the_in_memory_one(cli, streamed_run, table, tmp_path):
    """Same table, same budget: the streamed model is within a few points of the in-memory one."""
    in_memory = train_ok(cli, "tabular-fraud", tmp_path / "mem", "--data", table, *STREAM[1:])
    assert abs(in_memory["metrics"]["auroc"] - streamed_run[1]["metrics"]["auroc"]) < 0.08


def test_the_engine_batches_a_streamed_split_and_refuses_samplers_on_it(table):
    from dlkit.engine.loaders import make_loader
    from dlkit.errors import UserError

    cfg = _cfg("data.batch_size=256")
    train = _train_stream(table, cfg)
    rows = len(train)
    collate = get_recipe("tabular-fraud")(cfg).collate
    loader = make_loader(train, cfg, shuffle=True, collate=collate)
    batches = list(loader)
    assert len(batches) == len(loader) == -(-rows // 256)  # the epoch length the step budget plans with
    assert sum(len(b["label"]) for b in batches) == rows and batches[0]["numeric"].dtype == torch.float32
    loader.generator.manual_seed(5)  # what fit does at each epoch: the order follows the generator
    again = [b["id"].tolist() for b in loader]
    loader.generator.manual_seed(5)
    assert [b["id"].tolist() for b in loader] == again
    with pytest.raises(UserError, match="weighted sampling"):
        make_loader(train, cfg, shuffle=True, collate=collate, weights=[1.0] * rows)


def test_binned_ranking_metrics_match_the_exact_ones_without_keeping_scores():
    """Streamed runs score on histograms of log-odds bins: within 1e-3 of the exact AUPRC/AUROC/recall at
    90% precision on 200,000 rare-positive scores fed in chunks, and equal for a constant scorer (the
    prevalence baseline: all ties), with state that does not grow with the rows."""
    g = torch.Generator().manual_seed(0)
    labels = (torch.rand(200_000, generator=g) < 0.02).long()
    scores = torch.sigmoid(torch.randn(200_000, generator=g) * 2 - 5 + 4 * labels)
    ranking = ("average_precision", "auroc", "recall_at_precision_90")
    for preds, close in ((scores, 1e-3), (torch.full_like(scores, 0.02), 1e-6)):
        values = {}
        for binned in (False, True):
            metrics = fraud_metrics(0.5, binned=binned)
            for i in range(0, len(labels), 50_000):
                for m in metrics.values():
                    m.update(preds[i : i + 50_000], labels[i : i + 50_000])
            values[binned] = {k: float(metrics[k].compute()) for k in ranking}
            if binned:
                assert metrics["average_precision"].positives.shape == (STREAM_BINS,)
        for name, exact in values[False].items():
            assert values[True][name] == pytest.approx(exact, abs=close), name
        if close < 1e-3:  # the constant scorer
            assert values[True]["auroc"] == 0.5 and values[True]["recall_at_precision_90"] == 0
        else:  # the comparison is not between two zeros
            assert 0.02 < values[True]["recall_at_precision_90"] < 0.9
