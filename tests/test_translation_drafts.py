"""nlp-translation drafts (`model.draft`): the encoder reads `draft [SEP] source`. A training pair's memory
draft never comes from itself; evaluate, predict and the native export rebuild the same input from the
run alone.

One tiny run (a small BART, one epoch, `model.draft=both`) is shared by the tests that need a run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import load_sample_generator

SEP = "[SEP]"
SMALL = ["model.hidden=32", "model.ffn=64", "model.vocab_size=400", "data.batch_size=16"]
STATE = {
    "baselines": {
        "lexicon": {"open": "ouvrir", "the": "le", "file": "fichier", "close": "fermer"},
        "memory": {
            "pairs": [
                ["Open the file", "Ouvrir le fichier"],
                ["Open the files", "Ouvrir les fichiers"],
                ["Close the window", "Fermer la fenêtre"],
            ],
            "threshold": 0.3,
        },
    }
}


@pytest.fixture(scope="module")
def small_pairs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("draft_pairs")
    return load_sample_generator("nlp_translation").generate(out, seed=4, pairs=200)


@pytest.fixture(scope="module")
def run(tmp_path_factory, small_pairs) -> Path:
    from dlkit import jobs

    out = tmp_path_factory.mktemp("drafts") / "run"
    overrides = ["train.epochs=1", "model.draft=both", "generate.num_beams=2", "train.log_every=5", *SMALL]
    jobs.train("nlp-translation", data=small_pairs, out=out, overrides=overrides)
    return out


def _recipe(run_dir: Path):
    from dlkit_recipes.nlp_translation import NlpTranslation

    from dlkit.jobs.common import build_config
    from dlkit.run import Run

    opened = Run.open(run_dir)
    recipe = NlpTranslation(build_config(NlpTranslation, None, [], base=opened.config()))
    recipe.setup(opened.state(), fresh=False)
    return recipe, opened.state()


def test_a_pair_in_the_memory_is_drafted_from_the_other_pairs():
    from dlkit_recipes.nlp_translation.drafts import drafter

    memory = drafter(STATE, "memory")
    # the training pair itself: its own entry is off limits, the nearest other one is recalled
    assert memory(["Open the file"], ["Ouvrir le fichier"]) == ["Ouvrir les fichiers"]
    # a new source (predict, or a test pair) gets its best match, here the identical source
    assert memory(["Open the file"], None) == ["Ouvrir le fichier"]
    assert memory(["Open the file"], ["Ouvre le fichier"]) == ["Ouvrir le fichier"]
    both = drafter(STATE, "both")(["Close the file"], None)
    assert both == [f"Fermer le fichier {SEP} Fermer la fenêtre"]
    assert drafter(STATE, "words")(["Open the file", ""]) == ["Ouvrir le fichier", ""]
    assert drafter(STATE, "none") is None


def test_training_inputs_carry_a_draft_that_never_holds_their_own_target(small_pairs):
    from dlkit_recipes.nlp_translation import NlpTranslation

    from dlkit.jobs.common import build_config

    cfg = NlpTranslation.resolve_config(build_config(NlpTranslation, None, ["model.draft=memory", *SMALL]))
    recipe = NlpTranslation(cfg)
    data = recipe.load_data(small_pairs)
    assert data.state["draft"] == "memory"
    recipe.setup(data.state, fresh=True)
    train = data.train
    targets = [t for _, t in data.state["baselines"]["memory"]["pairs"]]
    assert sorted(targets) == sorted(train.targets)  # every training pair is in the memory
    own = 0
    for ids, target in zip(train.input_ids, train.targets, strict=True):
        text = recipe.tokenizer.decode(ids, skip_special_tokens=False)
        draft = text.split(SEP)[0].strip()
        assert draft and draft in targets
        own += draft == target and targets.count(target) == 1
    assert own == 0


def test_scratch_drafts_words_by_default_and_a_checkpoint_does_not():
    from dlkit_recipes.nlp_translation import NlpTranslation

    from dlkit.jobs.common import build_config

    def resolved(*overrides: str) -> str:
        cfg = build_config(NlpTranslation, None, list(overrides))
        return NlpTranslation.resolve_config(cfg)["model"]["draft"]

    assert resolved() == "words"
    assert resolved("model.name=some/checkpoint") == "none"
    assert resolved("model.name=some/checkpoint", "model.draft=memory") == "memory"


def test_evaluate_predict_and_export_rebuild_the_drafted_input(cli, run, small_pairs):
    state = json.loads((run / "preprocess" / "state.json").read_text())
    assert state["draft"] == "both"
    recipe, state = _recipe(run)
    data = recipe.load_data(small_pairs, state)
    test = data.test
    # predict builds the very input evaluation scored: source, separator, the same draft
    again = recipe.read_inputs(list(test.sources), state)
    by_source = dict(zip(again.sources, again.input_ids, strict=True))
    assert all(by_source[s] == ids for s, ids in zip(test.sources, test.input_ids, strict=True))
    assert all(recipe.tokenizer.decode(ids).count(SEP) == 3 for ids in test.input_ids)

    before = json.loads((run / "eval.json").read_text())
    res = cli("evaluate", run, "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["metrics"] == pytest.approx(before["metrics"])

    res = cli("export", run, "--format", "native")
    assert res.code == 0, res.err
    meta = json.loads((run / "exported" / "native" / "export.json").read_text())
    assert meta["parity"]["agreement"] >= 0.99
    assert meta["preprocessing"]["input"] == "tokenizer(draft, source)"
    assert meta["preprocessing"]["draft"] == "both"

    # the saved folder with plain transformers, fed `tokenizer(source, draft)`, translates like predict
    from dlkit_recipes.nlp_translation.drafts import drafter
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    source = test.sources[0]
    model = AutoModelForSeq2SeqLM.from_pretrained(run / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(run / "model")
    draft = drafter(state, state["draft"])([source])
    inputs = tokenizer(draft, [source], return_tensors="pt")
    with torch.inference_mode():
        text = tokenizer.batch_decode(model.generate(**inputs), skip_special_tokens=True)[0].strip()
    res = cli("predict", run, source, "--json")
    assert res.code == 0, res.err
    assert text == json.loads(res.out)["predictions"][0]["translation"]
