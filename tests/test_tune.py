"""`dlkit tune`: grid/random/tpe studies on a slice of the tabular sample data, trials as run directories,
selection on validation, best.yaml, bad spaces, failing and pruned trials, kills, several workers (SQLite
and a real PostgreSQL server)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, expect_user_error

pytest.importorskip("optuna")

TINY = ["train.epochs=1", "data.batch_size=128", "grad_monitor.enabled=false"]
GRID = "train.lr: {choices: [0.001, 0.01]}\nmodel.depth: {choices: [1, 2]}\n"
WIDE = (
    "train.lr: {float: {low: 1.0e-4, high: 1.0e-1, log: true}}\n"
    "model.width: {choices: [16, 32, 64]}\n"
    "model.dropout: {float: {low: 0.0, high: 0.5}}\n"
)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "CI": "1"}


@pytest.fixture(scope="module")
def fraud(tmp_path_factory) -> Path:
    """The first 4,000 rows of the tabular-fraud sample (about 70 fraud rows): seconds per trial."""
    out = tmp_path_factory.mktemp("fraud") / "transactions.csv"
    lines = (ROOT / "sample_data/tabular_fraud/transactions.csv").read_text().splitlines()[:4001]
    out.write_text("\n".join(lines) + "\n")
    return out


def space(folder: Path, text: str, name: str = "space.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def tune_ok(cli, *args) -> dict:
    res = cli("tune", "tabular-fraud", "--json", *map(str, args))
    assert res.code == 0, res.err
    return json.loads(res.out)


def csv_rows(folder: Path) -> list[dict]:
    with open(folder / "trials.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def best_val(run: Path, monitor: str = "average_precision") -> float:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return max(r[f"val_{monitor}"] for r in records)


@pytest.fixture(scope="module")
def grid_study(tmp_path_factory, fraud):
    """A 2x2 grid, run once through the real CLI (in-process) for the tests below."""
    from dlkit import console
    from dlkit.cli import main

    base = tmp_path_factory.mktemp("grid")
    opts = [
        "--space",
        space(base, GRID),
        "--strategy",
        "grid",
        "--data",
        fraud,
        "--out",
        base / "study",
        *TINY,
    ]
    old = sys.argv
    sys.argv = ["dlkit", "tune", "tabular-fraud", "--json", *map(str, opts)]
    console.set_quiet(False)
    try:
        from io import StringIO

        capture, saved = StringIO(), sys.stdout
        sys.stdout = capture
        try:
            main()
        except SystemExit as exc:
            assert exc.code in (0, None)
        finally:
            sys.stdout = saved
    finally:
        sys.argv = old
    return base, json.loads(capture.getvalue()), opts


def test_grid_runs_every_cell_once_and_picks_the_best_on_validation(grid_study):
    base, result, _ = grid_study
    folder = base / "study"
    assert [t["state"] for t in result["trials"]] == ["complete"] * 4
    cells = {(t["params"]["train.lr"], t["params"]["model.depth"]) for t in result["trials"]}
    assert cells == {(0.001, 1), (0.001, 2), (0.01, 1), (0.01, 2)}
    # each trial is an ordinary run; its value is its best validation check
    for t in result["trials"]:
        run = Path(t["run"])
        assert run.parent == folder.resolve() and run.name == f"trial-{t['number']:04d}"
        assert t["value"] == pytest.approx(best_val(run))
        manifest = json.loads((run / "manifest.json").read_text())
        assert manifest["tune"]["state"] == "complete" and manifest["status"] == "complete"
    values = {t["number"]: t["value"] for t in result["trials"]}
    best = max(values, key=values.get)
    assert result["best"]["number"] == best and result["best"]["value"] == values[best]
    # only the best trial ever saw the test split, once, at the end
    tested = [Path(t["run"]).name for t in result["trials"] if (Path(t["run"]) / "eval.json").exists()]
    assert tested == [f"trial-{best:04d}"]
    assert result["best"]["test"]["average_precision"] == pytest.approx(
        json.loads((Path(result["best"]["run"]) / "eval.json").read_text())["metrics"]["average_precision"]
    )
    rows = csv_rows(folder)
    assert [int(r["number"]) for r in rows] == sorted(values)
    assert {"params_train.lr", "params_model.depth"} <= set(rows[0])
    assert (folder / "history.png").stat().st_size > 1000 and (folder / "importances.png").is_file()


def test_finished_study_is_not_rerun(cli, grid_study):
    base, result, opts = grid_study
    before = sorted(p.name for p in (base / "study").glob("trial-*"))
    again = tune_ok(cli, *opts)  # the same command
    assert [t["number"] for t in again["trials"]] == [t["number"] for t in result["trials"]]
    assert sorted(p.name for p in (base / "study").glob("trial-*")) == before
    assert again["best"]["test"] == result["best"]["test"]  # read back, not evaluated again


def test_best_yaml_retrains_to_the_same_validation_metric(cli, grid_study, tmp_path):
    base, result, _ = grid_study
    res = cli(
        "train",
        "tabular-fraud",
        "--config",
        base / "study" / "best.yaml",
        "--out",
        tmp_path / "again",
        "--json",
    )
    assert res.code == 0, res.err
    assert best_val(tmp_path / "again") == pytest.approx(result["best"]["value"], abs=1e-6)


@pytest.mark.parametrize(("strategy", "trials"), [("random", 3), ("tpe", 4)])  # tpe: 3 random, then TPE
def test_seeded_strategies_propose_the_same_trials(cli, fraud, tmp_path, strategy, trials):
    path = space(tmp_path, WIDE)
    runs = [
        tune_ok(
            cli,
            "--space",
            path,
            "--strategy",
            strategy,
            "--trials",
            trials,
            "--data",
            fraud,
            "--out",
            tmp_path / name,
            "train.max_steps=3",
            *TINY,
        )
        for name in ("a", "b")
    ]
    a, b = ([t["params"] for t in r["trials"]] for r in runs)
    assert len(a) == trials and a == b
    assert len({json.dumps(p, sort_keys=True) for p in a}) == trials  # different proposals


@pytest.mark.parametrize(
    ("text", "args", "fragments"),
    [
        ("train.lrr: {choices: [0.1]}\n", [], ["unknown config key 'train.lrr'", "train.lr"]),
        ("train.lr: {choices: []}\n", [], ["'train.lr' has no choices"]),
        ("train.lr: {float: {low: 0.1, high: 0.01}}\n", [], ["low 0.1 above high 0.01"]),
        ("train.lr: {float: {low: 0.0, high: 0.1, log: true}}\n", [], ["log scale", "low > 0"]),
        ("train.lr: {choices: [fast, 0.1]}\n", [], ["train.lr", "expects float", "fast"]),
        ("model.depth: {float: {low: 1, high: 3}}\n", [], ["'model.depth' takes int values", "int:"]),
        ("model.activation: {choices: [relu, relu6]}\n", [], ["model.activation", "must be one of"]),
        (
            "train.lr: {float: {low: 1.0e-4, high: 0.1}}\n",
            ["--strategy", "grid"],
            ["grid search needs discrete", "train.lr"],
        ),
        ("train: {choices: [1]}\n", [], ["'train' is a section"]),
        ("train.lr: {choices: [0.1]}\n", ["train.lr=0.2"], ["both searched", "fixed"]),
        ("train.lr: {choices: [0.1]}\n", ["--pruner", "fastest"], ["unknown pruner"]),
    ],
)
def test_bad_spaces_stop_before_any_trial(cli, tmp_path, text, args, fragments):
    path = space(tmp_path, text)
    res = cli("tune", "tabular-fraud", "--space", path, "--out", tmp_path / "study", *args)
    expect_user_error(res, *fragments)
    assert not list((tmp_path / "study").glob("trial-*"))


def test_missing_optuna_says_how_to_install(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    res = cli("tune", "tabular-fraud", "--space", space(tmp_path, GRID))
    expect_user_error(res, "pip install 'dlkit[tune]'")


def test_example_space_is_a_valid_space(cli, tmp_path):
    from dlkit.registry import recipe_names

    for name in recipe_names():
        res = cli("tune", name, "--example-space")
        assert res.code == 0, (name, res.err)
        assert res.out.startswith("# Search space for")
    res = cli("tune", "tabular-fraud", "--example-space")
    path = space(tmp_path, res.out)
    from dlkit.jobs import schema_for
    from dlkit.registry import get_recipe
    from dlkit.tune.space import load_space

    keys = [d.key for d in load_space(path, schema_for(get_recipe("tabular-fraud")), "tpe")]
    assert {"train.lr", "model.width", "model.depth", "model.dropout"} <= set(keys)


def test_a_failing_trial_is_recorded_and_the_study_goes_on(cli, fraud, tmp_path):
    path = space(tmp_path, "model.dropout: {choices: [0.1, 1.5]}\n")  # 1.5 is not a probability
    result = tune_ok(
        cli, "--space", path, "--strategy", "grid", "--data", fraud, "--out", tmp_path / "s", *TINY
    )
    states = {t["params"]["model.dropout"]: t for t in result["trials"]}
    assert states[0.1]["state"] == "complete" and states[1.5]["state"] == "failed"
    assert "dropout" in states[1.5]["error"]
    assert result["best"]["params"] == {"model.dropout": 0.1}
    rows = {r["params_model.dropout"]: r for r in csv_rows(tmp_path / "s")}
    assert rows["1.5"]["state"] == "failed" and "dropout" in rows["1.5"]["error"]


def test_median_pruner_stops_hopeless_trials_cleanly(cli, fraud, tmp_path):
    # a hopeless learning rate in half the cells; the pruner judges from the 2nd check on
    path = space(tmp_path, "train.lr: {choices: [0.003, 1.0e-7]}\nmodel.depth: {choices: [1, 2]}\n")
    opts = ["--strategy", "grid", "--pruner", "median", "--data", fraud, "--out", tmp_path / "s"]
    result = tune_ok(cli, "--space", path, *opts, "train.epochs=4", "train.patience=0", "data.batch_size=128")
    pruned = [t for t in result["trials"] if t["state"] == "pruned"]
    assert {"train.lr": 1e-7, "model.depth": 1} in [t["params"] for t in pruned], result["trials"]
    for t in pruned:
        run = Path(t["run"])
        checks = (run / "metrics.jsonl").read_text().splitlines()
        assert 2 <= len(checks) < 4  # stopped after a check, before the budget's end
        manifest = json.loads((run / "manifest.json").read_text())
        assert manifest["tune"]["state"] == "pruned"
        assert (run / "checkpoints" / "best.safetensors").is_file() and not (run / "eval.json").exists()
    assert result["best"]["params"]["train.lr"] == 0.003
    assert result["counts"]["pruned"] == len(pruned) and result["counts"]["failed"] == 0


def _tune_process(folder: Path, space_path: Path, fraud: Path, trials: int, *extra: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "dlkit",
        "tune",
        "tabular-fraud",
        "--space",
        str(space_path),
        "--strategy",
        "random",
        "--trials",
        str(trials),
        "--data",
        str(fraud),
        "--out",
        str(folder),
        "--json",
        *TINY,
        *extra,
    ]
    return subprocess.Popen(
        cmd, env=ENV, cwd=folder.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.slow
def test_a_killed_study_resumes_without_rerunning_finished_trials(cli, fraud, tmp_path):
    path = space(tmp_path, WIDE)
    folder = tmp_path / "study"
    proc = _tune_process(folder, path, fraud, 4)
    deadline = time.time() + 300
    while not (folder / "logs" / "trial-0002.log").exists():  # trials 0 and 1 have finished
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.2)
    time.sleep(1.0)  # into trial 2's training
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {n: (folder / f"trial-000{n}" / "metrics.jsonl").read_bytes() for n in (0, 1)}
    mtimes = {n: (folder / f"trial-000{n}" / "metrics.jsonl").stat().st_mtime_ns for n in (0, 1)}

    result = tune_ok(
        cli, "--space", path, "--strategy", "random", "--trials", 4, "--data", fraud, "--out", folder, *TINY
    )
    numbers = [t["number"] for t in result["trials"]]
    assert len(numbers) == 4 and numbers[:2] == [0, 1] and 2 not in numbers  # 2 was re-queued as 3
    assert all(t["state"] == "complete" for t in result["trials"])
    for n in (0, 1):  # untouched
        assert (folder / f"trial-000{n}" / "metrics.jsonl").read_bytes() == finished[n]
        assert (folder / f"trial-000{n}" / "metrics.jsonl").stat().st_mtime_ns == mtimes[n]
    assert not (folder / "trial-0002").exists()
    # the re-queued trial ran the killed trial's parameters: same proposals as an uninterrupted study
    clean = tune_ok(
        cli,
        "--space",
        path,
        "--strategy",
        "random",
        "--trials",
        4,
        "--data",
        fraud,
        "--out",
        tmp_path / "clean",
        *TINY,
    )
    assert sorted(json.dumps(t["params"], sort_keys=True) for t in result["trials"]) == sorted(
        json.dumps(t["params"], sort_keys=True) for t in clean["trials"]
    )


def _two_workers(tmp_path: Path, fraud: Path, storage: list[str], trials: int = 6) -> list[dict]:
    path = space(tmp_path, WIDE)
    procs = [
        _tune_process(tmp_path / f"worker{i}", path, fraud, trials, *storage, "--study", "shared")
        for i in (1, 2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    return [json.loads(out) for out, _ in outs]


def _check_shared(results: list[dict], trials: int) -> None:
    final = max(results, key=lambda r: len(r["trials"]))
    numbers = [t["number"] for t in final["trials"]]
    assert len(numbers) == trials == len(set(numbers))
    runs = [Path(t["run"]) for t in final["trials"]]
    assert len(set(runs)) == trials and all((r / "config.yaml").is_file() for r in runs)
    assert {r.parent.name for r in runs} == {"worker1", "worker2"}  # both took part
    params = [json.dumps(t["params"], sort_keys=True) for t in final["trials"]]
    assert len(set(params)) == trials  # no trial ran twice


@pytest.mark.slow
def test_two_workers_share_one_sqlite_study(fraud, tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    _check_shared(_two_workers(tmp_path, fraud, ["--storage", url]), 6)


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


@pytest.fixture
def postgres(tmp_path):
    """A throw-away PostgreSQL server on a unix socket in a temp dir (run as `postgres` when we are root)."""
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql)")
    pytest.importorskip("psycopg2", reason="psycopg2 missing (pip install psycopg2-binary)")
    root = Path(tempfile_dir())
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    run = [] if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--"]
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    subprocess.run(
        [*run, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
        check=True,
        capture_output=True,
    )
    opts = f"-k {sock} -c listen_addresses='' -p 5433"
    subprocess.run(
        [*run, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-w", "-l", str(root / "log"), "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@/postgres?host={sock}&port=5433"
    finally:
        subprocess.run(
            [*run, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


def tempfile_dir() -> str:
    import tempfile

    path = tempfile.mkdtemp(prefix="dlkit-pg-")
    os.chmod(path, 0o755)
    return path


@pytest.mark.slow
def test_two_workers_share_one_postgresql_study(fraud, tmp_path, postgres):
    _check_shared(_two_workers(tmp_path, fraud, ["--storage", postgres]), 6)
