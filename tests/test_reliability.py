"""Faults: kills at random moments, damaged checkpoints, two trainings into one folder, bad weights
files, resume rules, a distributed rank that fails. Each ends in a resumable run or a clear exit 2."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT, TINY
from safetensors.torch import load_file, save_file

from dlkit.engine import checkpoint
from dlkit.errors import UserError
from dlkit.run import CLAIM, Run

FAST = ["train.epochs=2", "train.patience=0", *TINY]
ENV = {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1"}


def _dlkit(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "dlkit", *map(str, args)]
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def trained(tiny_images, tmp_path_factory) -> Path:
    from dlkit import jobs

    run = tmp_path_factory.mktemp("trained") / "run"
    jobs.train("vision-classification", str(tiny_images), out=run, overrides=FAST)
    return run


def _copy_run(trained: Path, tmp_path: Path) -> Path:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    return run


# --- the run directory ----------------------------------------------------------------------------
def test_a_run_directory_has_one_owner(tmp_path):
    first = Run.claim(tmp_path / "run")
    with pytest.raises(UserError, match="being written by another dlkit process"):
        Run.claim(tmp_path / "run")
    # default (timestamped) names step aside instead of failing
    assert Run.claim(tmp_path / "run", next_free=True) == tmp_path / "run-2"
    Run.release(first)
    assert not first.exists()  # nothing was trained: nothing is left behind


def test_a_claim_left_by_a_dead_process_is_taken_over(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (folder / CLAIM).write_text(str(dead.pid))
    assert Run.claim(folder) == folder and (folder / CLAIM).read_text() == str(os.getpid())


def test_two_trainings_into_one_folder(cli, tiny_images, tmp_path):
    run = tmp_path / "run"
    args = ["--data", str(tiny_images), "--out", str(run), "train.epochs=8", "train.patience=0", *TINY]
    first = subprocess.Popen(
        [sys.executable, "-m", "dlkit", "train", "vision-classification", *args],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while not (run / CLAIM).exists() and time.time() < deadline:
        time.sleep(0.05)
    res = cli("train", "vision-classification", *args)
    assert first.wait(timeout=300) == 0
    assert res.code == 2 and str(run) in res.err
    assert "another dlkit process" in res.err or "already exists" in res.err
    assert json.loads((run / "manifest.json").read_text())["status"] == "complete"


def test_an_unwritable_output_folder(cli, tiny_images, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o500)
    res = cli("train", "vision-classification", "--data", tiny_images, "--out", parent / "run", *FAST)
    parent.chmod(0o700)
    assert res.code == 2 and "cannot" in res.err and str(parent / "run") in res.err


def test_a_file_where_the_run_folder_should_be(cli, tiny_images, tmp_path):
    (tmp_path / "run").write_text("x")
    res = cli("train", "vision-classification", "--data", tiny_images, "--out", tmp_path / "run", *FAST)
    assert res.code == 2 and "not a folder" in res.err


# --- checkpoints ----------------------------------------------------------------------------------
def _damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(bytes(data[: len(data) // 2]))
    elif how == "empty":
        path.write_bytes(b"")
    else:  # one flipped byte in the tensor data (past the header): only the checksum can tell
        data[-5] ^= 0xFF
        path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "empty", "flipped"])
def test_a_damaged_best_checkpoint_falls_back_to_last(cli, trained, tmp_path, how):
    run = _copy_run(trained, tmp_path)
    _damage(run / "checkpoints/best.safetensors", how)
    res = cli("evaluate", run, "--json")
    assert res.code == 0, res.err
    assert "best.safetensors" in res.err and "using 'last.safetensors' instead" in res.err
    assert json.loads(res.out)["checkpoint"] == "last.safetensors"


@pytest.mark.parametrize("how", ["truncated", "flipped"])
def test_both_checkpoints_damaged_is_a_clear_error(cli, trained, tmp_path, how):
    run = _copy_run(trained, tmp_path)
    for name in ("best", "last"):
        _damage(run / f"checkpoints/{name}.safetensors", how)
    res = cli("predict", run, next((ROOT / "sample_data/vision_classification/test").rglob("*.png")))
    assert res.code == 2 and "is damaged" in res.err and "best.safetensors" in res.err
    assert "Traceback" not in res.err


def test_a_checkpoint_of_another_model_or_without_training_state(trained, tmp_path):
    other = torch.nn.Linear(3, 2)
    with pytest.raises(UserError, match="does not fit this model"):
        checkpoint.load_weights([trained / "checkpoints/best.safetensors"], other)
    bare = tmp_path / "bare.safetensors"
    save_file({"model.weight": torch.zeros(2, 3), "model.bias": torch.zeros(2)}, str(bare))
    with pytest.raises(UserError, match="lacks the training state"):
        checkpoint.load_full([bare], other)


def test_a_damaged_last_checkpoint_resumes_from_best(cli, trained, tmp_path):
    run = _copy_run(trained, tmp_path)
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    _damage(run / "checkpoints/last.safetensors", "flipped")
    res = cli("train", "vision-classification", "--out", run, "--resume", "--json")
    assert res.code == 0, res.err
    assert "last.safetensors" in res.err and "using 'best.safetensors' instead" in res.err
    checkpoint.read(run / "checkpoints/last.safetensors")  # rewritten, sound


# --- weights files and config files checked before a run exists -----------------------------------
def _malicious_pth(path: Path) -> None:
    class Boom:
        def __reduce__(self):
            return (os.system, ("echo pwned > /dev/null",))

    torch.save({"weight": Boom()}, path)


@pytest.mark.parametrize(
    ("name", "write"),
    [
        ("one-byte.safetensors", lambda p: p.write_bytes(b"x")),
        ("list.pth", lambda p: torch.save([torch.zeros(2)], p)),
        ("pickled-code.pth", _malicious_pth),
        ("empty.pth", lambda p: torch.save({}, p)),
    ],
)
def test_a_bad_pretrained_file_stops_before_the_run_folder(cli, tiny_images, tmp_path, name, write):
    weights = tmp_path / name
    write(weights)
    run = tmp_path / "run"
    res = cli(
        "train", "vision-classification", "--data", tiny_images, "--out", run, f"model.pretrained={weights}"
    )
    assert res.code == 2 and name in res.err and "Traceback" not in res.err
    assert not run.exists()
    res = cli(
        "check", "vision-classification", "--data", tiny_images, f"model.pretrained={weights}", "--json"
    )
    finding = json.loads(res.out)["findings"][0]
    assert res.code == 2 and finding["severity"] == "fatal" and name in finding["message"]


def test_a_run_that_fails_on_its_data_leaves_nothing_behind(cli, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\nmissing.png,a\n")
    run = tmp_path / "run"
    res = cli("train", "vision-classification", "--data", bad, "--out", run)
    assert res.code == 2 and not run.exists()
    run.mkdir()  # an empty folder given as --out is left empty (or removed), never half-filled
    res = cli("train", "vision-classification", "--data", bad, "--out", run)
    assert res.code == 2 and (not run.exists() or not any(run.iterdir()))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"train:\n  lr: \xff\xfe\n", "not UTF-8"),
        (b"!!python/object/apply:os.system ['true']\n", "not valid YAML"),
    ],
)
def test_config_files_that_are_not_plain_yaml(cli, tmp_path, content, expected):
    config = tmp_path / "c.yaml"
    config.write_bytes(content)
    res = cli("train", "vision-classification", "--config", config, "--out", tmp_path / "run")
    assert res.code == 2 and expected in res.err and "c.yaml" in res.err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("damage", ["{not json", '["a list"]'])
def test_a_damaged_manifest(cli, trained, tmp_path, damage):
    run = _copy_run(trained, tmp_path)
    (run / "manifest.json").write_text(damage)
    res = cli("evaluate", run)
    assert res.code == 2 and "manifest.json" in res.err and "Traceback" not in res.err


# --- resume rules ---------------------------------------------------------------------------------
def test_resume_of_a_finished_run_says_so(cli, trained, tmp_path):
    run = _copy_run(trained, tmp_path)
    before = (run / "checkpoints/last.safetensors").read_bytes()
    res = cli("train", "vision-classification", "--out", run, "--resume")
    assert res.code == 0 and "is complete" in res.err
    res = cli("train", "vision-classification", "--out", run, "--resume", "--json")
    assert res.code == 0 and json.loads(res.out)["complete"] is True
    assert (run / "checkpoints/last.safetensors").read_bytes() == before
    res = cli("train", "vision-classification", "--out", run, "--resume", "train.epochs=3", "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["epochs"] == 3


def test_resume_refuses_keys_it_cannot_apply_and_changed_data(cli, trained, tiny_images, tmp_path):
    run = _copy_run(trained, tmp_path)
    res = cli("train", "vision-classification", "--out", run, "--resume", "train.lr=0.5", "model.dropout=0.3")
    assert res.code == 2 and "train.lr, model.dropout cannot change on --resume" in res.err
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    changed = tmp_path / "changed"
    import shutil

    shutil.copytree(tiny_images, changed)
    next(changed.rglob("*.png")).unlink()
    args = [
        "train",
        "vision-classification",
        "--out",
        run,
        "--resume",
        f"data.path={changed}",
        "train.epochs=3",
    ]
    res = cli(*args)
    assert res.code == 2 and "changed since run" in res.err and "--force" in res.err
    res = cli(*args, "--force")
    assert res.code == 0, res.err


# --- kills ----------------------------------------------------------------------------------------
def _weights(run: Path) -> dict:
    return load_file(str(run / "checkpoints/last.safetensors"))


def _checks(run: Path) -> int:
    log = run / "metrics.jsonl"
    return len(log.read_text().splitlines()) if log.exists() else 0


def _kill_and_resume(tiny_images, tmp_path, kills: list[tuple[int, float]], epochs: int) -> tuple[Path, int]:
    """Train into one folder; for each (checks, delay): once the run has logged that many validation
    checks (0: once it has claimed its folder, before the data load), wait `delay` seconds and SIGKILL
    it; then resume (or start again when no checkpoint was written yet). The run and the kills that
    landed (a kill aimed past the end of training lands in the final evaluation or not at all)."""
    run, landed = tmp_path / "cut", 0
    fresh = [
        "--data",
        str(tiny_images),
        "--out",
        str(run),
        f"train.epochs={epochs}",
        "train.patience=0",
        *TINY,
    ]
    for kill in [*kills, None]:
        args = ["--out", str(run), "--resume"] if (run / "checkpoints/last.safetensors").exists() else fresh
        cmd = [sys.executable, "-m", "dlkit", "train", "vision-classification", *args]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if kill is None:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err.decode()[-2000:]
            break
        checks, delay = kill
        deadline = time.time() + 120
        while proc.poll() is None and time.time() < deadline:
            started = (run / CLAIM).exists() if checks == 0 else _checks(run) >= checks
            if started:
                break
            time.sleep(0.01)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            landed += 1
        proc.wait()
    return run, landed


def _kill_suite(tiny_images, tmp_path, kills: int, seed: int, epochs: int):
    full = tmp_path / "full"
    args = ["--out", full, f"train.epochs={epochs}", "train.patience=0", *TINY]
    res = _dlkit("train", "vision-classification", "--data", tiny_images, *args)
    assert res.returncode == 0, res.stderr[-2000:]
    rng = random.Random(seed)
    aims = sorted((rng.randint(0, epochs), rng.uniform(0.0, 0.3)) for _ in range(kills))
    run, landed = _kill_and_resume(tiny_images, tmp_path, aims, epochs)
    a, b = _weights(full), _weights(run)
    assert a.keys() == b.keys()
    assert all(a[k].equal(b[k]) for k in a), "resumed weights differ from the uninterrupted run"
    assert json.loads((run / "manifest.json").read_text())["status"] == "complete"
    assert not list(run.glob("checkpoints/.*tmp*"))
    return landed


def test_kill_9_then_resume_is_bit_exact(tiny_images, tmp_path):
    assert _kill_suite(tiny_images, tmp_path, kills=2, seed=0, epochs=6) >= 1


@pytest.mark.slow
def test_many_kills_at_random_moments_then_resume_is_bit_exact(tiny_images, tmp_path):
    """Kills land during epochs, checkpoint writes, the final evaluation, or the data load."""
    assert _kill_suite(tiny_images, tmp_path, kills=8, seed=1, epochs=10) >= 5


def test_sigterm_says_how_to_resume(tiny_images, tmp_path):
    run = tmp_path / "run"
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
        "train.epochs=50",
        "train.patience=0",
        *TINY,
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 120
    while not (run / "checkpoints/last.safetensors").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert f"--out {run} --resume" in err and "Traceback" not in err
    assert json.loads((run / "manifest.json").read_text())["status"] == "running"


# --- distributed ----------------------------------------------------------------------------------
def test_a_rank_that_fails_ends_the_job_with_its_message(tiny_images, tmp_path):
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port=29531",
        str(ROOT / "tests/faults/ddp_rank_fails.py"),
        "train",
        "vision-classification",
        "--data",
        str(tiny_images),
        "--out",
        str(run),
        "train.epochs=1",
        "dist.timeout=60",
    ]
    done = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=240)
    assert done.returncode != 0
    assert "error: [rank 1] 'shard-1.csv' row 3" in done.stderr
    assert not (run / "manifest.json").exists()  # no half-made run that looks like a run


# --- write paths never come from run files ------------------------------------------------------
@pytest.mark.parametrize("name", ["../escape.json", "/tmp/abs.json", "sub/dir.json", ".."])
def test_tokenizer_file_names_from_a_run_cannot_write_outside(tmp_path, name):
    from dlkit import hf

    with pytest.raises(UserError, match="not a plain file name"):
        hf.tokenizer_from_state({"files": {name: {"text": "{}"}}})
    assert not (tmp_path.parent / "escape.json").exists()


def test_a_transformers_folder_with_broken_weights(tmp_path):
    from transformers import AutoModelForSequenceClassification, BertConfig

    from dlkit import hf

    folder = tmp_path / "ckpt"
    model = AutoModelForSequenceClassification.from_config(
        BertConfig(
            vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16
        )
    )
    model.save_pretrained(folder)
    weights = next(folder.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(UserError, match="cannot be loaded") as info:
        hf.from_pretrained(AutoModelForSequenceClassification, str(folder))
    assert str(folder) in info.value.message
