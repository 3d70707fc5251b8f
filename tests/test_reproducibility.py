"""The same config, seed and data give the same model, for every recipe: identical eval.json metrics and
baselines, identical weights, identical fitted state (tokenizers included); a run re-runs from its
config.yaml; and a re-run warns when the data or the package versions differ from the run's manifest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT, train_ok
from safetensors.torch import load_file
from test_recipes import FAST

from dlkit.registry import recipe_names

STEPS = ["train.max_steps=2", "report.enabled=false"]  # a tiny budget: what is compared is exactness
WAIT = 900  # seconds the second process may take for every recipe on a loaded 2-core machine

# The second run of every recipe trains in its own process with another PYTHONHASHSEED, so anything that
# hangs on Python's string hashing (set or dict order of labels, words, files) shows up as a difference.
SECOND = """
import json, sys, traceback
from pathlib import Path
import torch
torch.set_num_threads(int(sys.argv[2]))
from dlkit.jobs.train import train
root, budgets = Path(sys.argv[1]), json.loads(sys.argv[3])
for case, (name, overrides) in budgets.items():
    out = root / case
    try:
        train(name, out=out / "run", overrides=overrides)
    except BaseException:
        out.mkdir(parents=True, exist_ok=True)
        (out / "error.txt").write_text(traceback.format_exc())
    (out / "done").touch()
"""


def _budget(name: str) -> list[str]:
    return [*FAST.get(name, []), *STEPS]


# every registered recipe with its defaults, plus a WordPiece tokenizer trained on the texts (the default
# sentiment model needs none) and the weighted sampler (tabular-fraud's imbalance option)
SENTIMENT = [*_budget("nlp-sentiment"), "model.name=bert-tiny", "model.tokenizer=wordpiece"]
CASES = {name: (name, _budget(name)) for name in recipe_names()}
CASES["nlp-sentiment+wordpiece"] = ("nlp-sentiment", SENTIMENT)
CASES["tabular-fraud+sampling"] = ("tabular-fraud", [*_budget("tabular-fraud"), "imbalance=sampling"])


@pytest.fixture(scope="module")
def second_runs(request, tmp_path_factory):
    """Every selected case trained once more, by a separate process started at once (it trains while the
    tests train their first runs); yields the folder holding CASE/run (or CASE/error.txt) and CASE/done."""
    root = tmp_path_factory.mktemp("second")
    twice = test_every_recipe_trains_the_same_twice.__name__
    chosen = [
        i.callspec.params["case"] for i in request.session.items if getattr(i, "originalname", "") == twice
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CI": "1"}
    env["PYTHONHASHSEED"] = "7" if os.environ.get("PYTHONHASHSEED") != "7" else "8"
    args = [
        sys.executable,
        "-c",
        SECOND,
        str(root),
        str(torch.get_num_threads()),
        json.dumps({c: CASES[c] for c in chosen}),
    ]
    log = open(root / "log.txt", "w")  # noqa: SIM115 - the process writes to it until it ends
    # the same working directory as this process: a run's state names its data path as it was given
    proc = subprocess.Popen(args, cwd=os.getcwd(), env=env, stdout=log, stderr=subprocess.STDOUT)
    yield root
    proc.kill()
    proc.wait()
    log.close()


def _wait_for(root: Path, case: str) -> Path:
    deadline = time.monotonic() + WAIT
    while not (root / case / "done").exists():
        assert time.monotonic() < deadline, (root / "log.txt").read_text()[-3000:]
        time.sleep(0.2)
    error = root / case / "error.txt"
    assert not error.exists(), error.read_text()
    return root / case / "run"


def assert_same_run(a: Path, b: Path) -> None:
    """Identical metrics, baselines and details in eval.json, identical checkpoints (every tensor, bit
    for bit), identical fitted state (tokenizer, label maps, baselines) and native model folder."""
    ea, eb = (json.loads((p / "eval.json").read_text()) for p in (a, b))
    for key in ("metrics", "baselines", "strongest_baseline", "beats_baseline", "details"):
        assert ea.get(key) == eb.get(key), key
    for which in ("best", "last"):
        ta, tb = (load_file(p / "checkpoints" / f"{which}.safetensors") for p in (a, b))
        assert sorted(ta) == sorted(tb)
        differ = [k for k in ta if ta[k].shape != tb[k].shape or not torch.equal(ta[k], tb[k])]
        assert not differ, f"{which}: {differ[:5]}"
    assert (a / "preprocess" / "state.json").read_text() == (b / "preprocess" / "state.json").read_text()
    native = sorted(p.relative_to(a) for p in a.glob("model/**/*") if p.is_file())  # e.g. HF folder
    for rel in native:  # config, weights and tokenizer files
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


@pytest.mark.parametrize("case", CASES)
def test_every_recipe_trains_the_same_twice(case, cli, tmp_path, second_runs):
    name, overrides = CASES[case]
    first = tmp_path / "run"
    train_ok(cli, name, first, *overrides)
    second = _wait_for(second_runs, case)
    assert_same_run(first, second)
    state = json.loads((first / "preprocess" / "state.json").read_text())
    if case == "nlp-sentiment+wordpiece":  # the state compared above holds the fitted vocabulary
        assert json.loads(state["tokenizer"]["json"])["model"]["type"] == "WordPiece"
        assert (first / "model" / "tokenizer.json").is_file()  # compared file by file above
    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["bit_reproducible"] is True and "CPU" in manifest["bit_reproducible_reason"]
    for package in ("dlkit", "torch", "torchvision", "timm", "transformers", "tokenizers", "numpy"):
        assert manifest["versions"][package], package
    assert manifest["threads"] == torch.get_num_threads()
    assert manifest["data"]["sha256"] and manifest["device"] == "cpu"


@pytest.fixture(scope="module")
def sentiment_run(tmp_path_factory) -> Path:
    """One nlp-sentiment run (it fits a WordPiece tokenizer and a classical baseline), in this process."""
    from dlkit.jobs.train import train

    run = tmp_path_factory.mktemp("sentiment") / "run"
    train("nlp-sentiment", out=run, overrides=SENTIMENT)
    return run


def test_a_run_reruns_from_its_config(cli, tmp_path, sentiment_run):
    again = tmp_path / "again"
    res = cli("train", "nlp-sentiment", "--config", sentiment_run / "config.yaml", "--out", again, "--json")
    assert res.code == 0, res.err
    assert_same_run(sentiment_run, again)
    assert f"run '{sentiment_run}'" not in res.err, res.err  # same data, versions, threads: no warning


def test_a_rerun_warns_when_data_or_versions_changed(cli, tmp_path, sentiment_run):
    import shutil

    run = tmp_path / "old"
    shutil.copytree(sentiment_run, run)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["versions"]["torch"] = "1.0.0"
    (run / "manifest.json").write_text(json.dumps(manifest))
    data = tmp_path / "reviews.csv"
    original = (ROOT / "sample_data" / "nlp_sentiment" / "reviews.csv").read_text()
    data.write_text(original + "a review added after the run was trained,positive\r\n")
    res = cli(
        "train", "nlp-sentiment", "--config", run / "config.yaml", "--data", data, "--out", tmp_path / "new"
    )
    assert res.code == 0, res.err  # a warning, not an error
    text = " ".join(res.err.split())
    assert text.count(f"the data at '{data}' differs from the data run '{run}' was trained on") == 1, res.err
    assert text.count(f"package versions differ from run '{run}''s (torch 1.0.0 -> ") == 1, res.err


def test_train_tokenizer_gives_the_same_vocabulary_on_frequency_ties():
    """Every word twice and every letter pair about as frequent: the trainer meets ties at each merge."""
    import random

    from dlkit import hf

    rng = random.Random(0)
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyzéß") for _ in range(rng.randint(3, 8)))
        for _ in range(1500)
    ]
    texts = [" ".join(words[i : i + 5]) for i in range(0, len(words), 5)] * 2
    for kind in ("wordpiece", "bpe"):
        first, second = (hf.train_tokenizer(texts, vocab_size=400, kind=kind) for _ in range(2))
        assert first.backend_tokenizer.to_str() == second.backend_tokenizer.to_str(), kind
        assert len(first) == 400
        added = {t.content for t in first.backend_tokenizer.get_added_tokens_decoder().values()}
        assert added == set(hf.SPECIAL.values())  # word-inner pieces ("##e") are plain vocabulary
        assert first.decode(first(texts[0])["input_ids"], skip_special_tokens=True).strip() == texts[0]


def test_manifest_says_when_a_run_is_bit_reproducible():
    from dlkit.reproducibility import bit_reproducible, differences, environment

    assert bit_reproducible("cpu", False)[0] and bit_reproducible("cuda", True)[0]
    exact, why = bit_reproducible("cuda", False)
    assert not exact and "deterministic=true" in why
    now = environment()
    then = {"data": {"sha256": "x"}, "versions": dict(now["versions"]), "threads": now["threads"]}
    data = {"path": "d", "sha256": "x", "files": 1, "bytes": 2}
    assert differences(then, data, now) == []
    then["threads"] += 1
    assert ["CPU threads" in line for line in differences(then, data, now)] == [True]


@pytest.mark.gpu
def test_deterministic_cuda_runs_are_bit_exact(cli, tmp_path):
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        train_ok(cli, "tabular-fraud", run, *_budget("tabular-fraud"), "device=cuda", "deterministic=true")
    assert_same_run(*runs)
    manifest = json.loads((runs[0] / "manifest.json").read_text())
    assert manifest["bit_reproducible"] is True and manifest["deterministic"] is True
