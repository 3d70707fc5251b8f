"""`dlkit batch`: jobs in their own processes, a failure isolated, parallel workers, re-runs that skip
finished jobs, a dry run, and bad files refused before anything runs. Jobs train the toy plug-in
(tests/plugin) for one epoch, so the whole file takes seconds of compute."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, expect_user_error

from dlkit import console
from dlkit.jobs.batch import batch

POINTS = ROOT / "tests" / "plugin" / "dlkit_toy" / "points.csv"
JOBS = f"""
defaults:
  overrides: {{device: cpu}}
  train: {{overrides: {{train.epochs: 1}}}}
jobs:
  - {{name: good, command: train, recipe: toy-points}}
  - {{name: bad, command: train, recipe: toy-points, data: broken.csv}}
  - {{name: bad-eval, command: evaluate, run: "${{jobs.bad.run}}"}}
  - {{name: good-predict, command: predict, run: "${{jobs.good.run}}", inputs: ["{POINTS}"]}}
"""


@pytest.fixture(scope="module")
def toy_on_path(tmp_path_factory):
    """The toy plug-in installed into a folder of its own, visible to this process and to job processes."""
    target = tmp_path_factory.mktemp("toy")
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    done = subprocess.run(
        [*pip, "--target", str(target), str(ROOT / "tests" / "plugin")], capture_output=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(target), before) if p)
    sys.path.insert(0, str(target))
    yield target
    sys.path.remove(str(target))
    if before is None:
        os.environ.pop("PYTHONPATH")
    else:
        os.environ["PYTHONPATH"] = before


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, toy_on_path):
    """One batch with a job that fails (its CSV has no x/y columns) and jobs that do not, two at a time."""
    folder = tmp_path_factory.mktemp("batch")
    (folder / "broken.csv").write_text("a,b,label\n1,2,p\n")
    (folder / "jobs.yaml").write_text(JOBS)
    console.set_quiet(True)
    record = batch(folder / "jobs.yaml", parallel=2)
    return folder, {j["name"]: j for j in record["jobs"]}, record


def test_a_failing_job_is_recorded_and_the_others_complete(first_run):
    folder, jobs, record = first_run
    assert record["status"] == "failed" and record["failed"] == ["bad"]
    assert jobs["good"]["status"] == "done" and jobs["good-predict"]["status"] == "done"
    assert jobs["good"]["monitor"] == "accuracy" and 0 <= jobs["good"]["metric"] <= 1
    assert jobs["good-predict"]["metric"] > 0  # the number of predictions written
    assert jobs["bad"]["exit_code"] == 2 and "no column 'x'" in jobs["bad"]["reason"]
    assert (
        jobs["bad-eval"]["status"] == "skipped" and "needs 'bad', which failed" in jobs["bad-eval"]["reason"]
    )
    assert "no column 'x'" in (folder / "jobs.batch" / "logs" / "bad.log").read_text()
    on_disk = json.loads((folder / "jobs.batch" / "batch.json").read_text())
    assert {j["name"]: j["status"] for j in on_disk["jobs"]} == {n: j["status"] for n, j in jobs.items()}
    assert (folder / "jobs.batch" / "runs" / "good" / "eval.json").is_file()


def test_parallel_2_runs_two_jobs_at_once(first_run):
    _, jobs, _ = first_run
    good, bad = jobs["good"], jobs["bad"]
    assert good["started"] < bad["ended"] and bad["started"] < good["ended"]


def test_a_rerun_skips_completed_jobs_and_exits_non_zero_on_failure(first_run, cli):
    folder, before, _ = first_run
    res = cli("batch", folder / "jobs.yaml", "--json")
    assert res.code == 1 and "1 of 4 jobs failed: bad" in " ".join(res.err.split())
    jobs = {j["name"]: j for j in json.loads(res.out)["jobs"]}
    assert jobs["good"]["status"] == jobs["good-predict"]["status"] == "cached"
    assert jobs["good"]["metric"] == before["good"]["metric"]
    assert jobs["bad"]["status"] == "failed" and jobs["bad"]["started"] > before["bad"]["ended"]

    forced = cli("batch", folder / "jobs.yaml", "--rerun", "--dry-run", "--json")
    assert forced.code == 0
    assert {j["status"] for j in json.loads(forced.out)["jobs"]} == {"would run"}


def test_dry_run_prints_the_expanded_matrix_and_runs_nothing(cli, tmp_path):
    file = tmp_path / "sweep.yaml"
    file.write_text(
        "jobs:\n  - name: sweep\n    command: train\n    recipe: tabular-fraud\n"
        "    matrix: {seed: [0, 1], train.lr: [0.01, 0.001]}\n"
        "  - {name: score, command: evaluate, run: '${jobs.sweep[seed=1,train.lr=0.001].run}'}\n"
    )
    res = cli("batch", file, "--dry-run", "--json")
    assert res.code == 0, res.err
    jobs = json.loads(res.out)["jobs"]
    assert [j["name"] for j in jobs] == [
        "sweep[seed=0,train.lr=0.01]",
        "sweep[seed=0,train.lr=0.001]",
        "sweep[seed=1,train.lr=0.01]",
        "sweep[seed=1,train.lr=0.001]",
        "score",
    ]
    assert "--seed 1" in jobs[3]["command"] and "train.lr=0.001" in jobs[3]["command"]
    assert jobs[4]["needs"] == ["sweep[seed=1,train.lr=0.001]"] and jobs[3]["run"] in jobs[4]["command"]
    assert not (tmp_path / "sweep.batch").exists()


BAD = {
    "unknown command": (
        "jobs:\n  - {name: a, command: trian, recipe: tabular-fraud}\n",
        ["'a'", "trian", "train"],
    ),
    "not yet a command": ("jobs:\n  - {name: a, command: tune, recipe: tabular-fraud}\n", ["'a'", "tune"]),
    "unknown key": (
        "jobs:\n  - {name: a, command: train, recipe: tabular-fraud, sed: 1}\n",
        ["'a'", "sed", "seed"],
    ),
    "unknown config key": (
        "jobs:\n  - {name: a, command: train, recipe: tabular-fraud, overrides: {train.epoch: 1}}\n",
        ["'a'", "train.epoch", "train.epochs"],
    ),
    "empty matrix": (
        "jobs:\n  - {name: a, command: train, recipe: tabular-fraud, matrix: {seed: []}}\n",
        ["'a'", "matrix", "seed", "no jobs"],
    ),
    "missing job": (
        "jobs:\n  - {name: a, command: evaluate, run: '${jobs.nope.run}'}\n",
        ["'a'", "'run'", "nope", "does not exist"],
    ),
    "later job": (
        "jobs:\n  - {name: a, command: evaluate, run: '${jobs.b.run}'}\n"
        "  - {name: b, command: train, recipe: tabular-fraud}\n",
        ["'a'", "'run'", "'b'", "comes later"],
    ),
    "not yaml": ("jobs: [a, {b\n", ["not valid YAML", "line"]),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_files_are_refused_before_any_job_runs(cli, tmp_path, case):
    text, fragments = BAD[case]
    file = tmp_path / "jobs.yaml"
    file.write_text(text)
    expect_user_error(cli("batch", file), *fragments)
    assert not (tmp_path / "jobs.batch").exists()


def test_a_file_that_is_not_utf8_is_refused(cli, tmp_path):
    file = tmp_path / "jobs.yaml"
    file.write_bytes(b"jobs:\n  - name: \xff\xfe\n")
    expect_user_error(cli("batch", file), "not UTF-8")
