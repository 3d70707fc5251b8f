"""nlp-translation: the default model learns the sample pair, a checkpoint fine-tunes, bad input is named.

One default training run on the sample data is shared by the tests that read a run directory; tests that
train a checkpoint of their own use a tiny BART and a small generated corpus so they take seconds.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from conftest import ROOT

SAMPLE = ROOT / "sample_data" / "nlp_translation" / "pairs.tsv"
QUICK = ["train.log_every=5", "grad_monitor.every=50"]


def _expect_user_error(res, *fragments):
    assert res.code == 2, (res.code, res.err)
    assert "Traceback" not in res.err
    for f in fragments:
        assert f in res.err, res.err


def _generator():
    spec = importlib.util.spec_from_file_location("make_nt", ROOT / "sample_data" / "make_nlp_translation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """The default model and config on the sample data, for 12 epochs instead of 30.

    The warmup fraction is raised so that the warmup lasts as many steps as the default's: a post-norm
    transformer trained from scratch needs it to start attending to the source.
    """
    from dlkit import jobs

    run = tmp_path_factory.mktemp("nt") / "run"
    jobs.train("nlp-translation", out=run, overrides=["train.epochs=12", "train.warmup=0.25", *QUICK])
    return run


@pytest.fixture(scope="module")
def small_pairs(tmp_path_factory) -> Path:
    """A clean 200-pair corpus from the sample-data generator (a different seed than the sample set)."""
    out = tmp_path_factory.mktemp("small_pairs")
    return _generator().generate(out, seed=3, pairs=200)


def _tiny_checkpoint(folder: Path, data: Path, vocab_size: int | None = None) -> Path:
    """A tiny BART + byte-level BPE tokenizer written with save_pretrained, like a downloaded checkpoint."""
    import pandas as pd
    from transformers import BartConfig, BartForConditionalGeneration

    from dlkit.text import train_tokenizer

    df = pd.read_csv(data, sep="\t", keep_default_na=False)
    tokenizer = train_tokenizer(list(df["source"]) + list(df["target"]), 400, kind="bpe", lowercase=False)
    config = BartConfig(
        vocab_size=vocab_size or len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
        max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id, decoder_start_token_id=tokenizer.sep_token_id,
        forced_eos_token_id=None,
    )
    torch.manual_seed(0)
    BartForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# --- the default model ----------------------------------------------------------------------
def test_default_model_learns_the_sample_pair_far_above_copying(trained):
    result = json.loads((trained / "eval.json").read_text())
    metrics, baseline = result["metrics"], result["baseline"]
    assert result["monitor"] == "bleu" and result["beats_baseline"] is True
    assert baseline["method"] == "copy the source"
    assert metrics["bleu"] > 10 * max(baseline["bleu"], 1.0), (metrics, baseline)
    assert metrics["chrf"] > baseline["chrf"] + 15, (metrics, baseline)
    assert "tok:13a" in baseline["sacrebleu_signature"]["bleu"]
    examples = baseline["examples"]
    assert len(examples) == 5 and set(examples[0]) == {"source", "reference", "hypothesis"}
    state = json.loads((trained / "preprocess" / "state.json").read_text())
    assert state["cleaning"]["removed"]["empty side"] == 8
    assert state["cleaning"]["removed"]["exact duplicates"] == 17
    assert state["cleaning"]["identical_kept"] == 3


def test_evaluate_and_predict_need_only_the_run(cli, trained, tmp_path):
    before = json.loads((trained / "eval.json").read_text())["metrics"]["bleu"]
    res = cli("evaluate", trained, "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["metrics"]["bleu"] == pytest.approx(before)

    lines = tmp_path / "sentences.txt"
    lines.write_text("The dog sleeps.\n\nA girl eats the red apple.\n")
    out = tmp_path / "translations.jsonl"
    res = cli("predict", trained, "The cat sings.", lines, "--output", out)
    assert res.code == 0, res.err
    records = [json.loads(line) for line in out.read_text().splitlines()]
    sources = ["The cat sings.", "The dog sleeps.", "", "A girl eats the red apple."]
    assert [r["source"] for r in records] == sources
    assert records[2]["translation"] == ""  # an empty line in a batch comes back empty
    assert all(r["translation"] for i, r in enumerate(records) if i != 2)

    table = tmp_path / "more.tsv"
    table.write_text("id\tsource\n7\tThe cat sings.\n")
    res = cli("predict", trained, table, "--json")
    assert json.loads(res.out)["predictions"] == [records[0]]


def test_native_model_translates_with_plain_transformers(cli, trained):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    model = AutoModelForSeq2SeqLM.from_pretrained(trained / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(trained / "model")
    inputs = tokenizer(["The cat sings."], return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**inputs)  # beam width and length come from the saved generation config
    text = tokenizer.batch_decode(out, skip_special_tokens=True)[0].strip()
    res = cli("predict", trained, "The cat sings.", "--json")
    assert text and text == json.loads(res.out)["predictions"][0]["translation"]


def test_predict_with_only_an_empty_string_is_refused(cli, trained):
    _expect_user_error(cli("predict", trained, ""), "nothing to translate")


def test_predict_names_a_missing_input_file(cli, trained):
    _expect_user_error(cli("predict", trained, "missing.txt"), "input file 'missing.txt' does not exist")


# --- a local checkpoint -----------------------------------------------------------------------
def test_tiny_local_checkpoint_fine_tunes_through_the_same_command(cli, tmp_path, small_pairs):
    import shutil

    checkpoint = _tiny_checkpoint(tmp_path / "tiny-bart", small_pairs)
    run = tmp_path / "run"
    res = cli("train", "nlp-translation", "--data", small_pairs, "--out", run, "--json",
              f"model.name={checkpoint}", "train.epochs=3", "train.lr=3e-3", "generate.num_beams=2", *QUICK)
    assert res.code == 0, res.err
    losses = [json.loads(line)["train_loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert losses[-1] < losses[0]
    shutil.rmtree(checkpoint)  # the run keeps its own tokenizer and config: no need for the original folder
    res = cli("predict", run, "The dog sleeps.", "--json")
    assert res.code == 0, res.err
    assert "translation" in json.loads(res.out)["predictions"][0]
    from transformers import AutoModelForSeq2SeqLM

    assert AutoModelForSeq2SeqLM.from_pretrained(run / "model").config.d_model == 32


# --- bad input ------------------------------------------------------------------------------
def test_missing_columns_are_named_with_the_ones_present(cli, tmp_path):
    table = tmp_path / "pairs.tsv"
    table.write_text("en\tfr\nThe cat.\tLe chat.\n")
    _expect_user_error(cli("train", "nlp-translation", "--data", table), "has no column 'source'",
                       "columns: en, fr")


def test_corpus_empty_after_cleaning_says_which_filter_removed_what(cli, tmp_path):
    table = tmp_path / "pairs.csv"
    table.write_text(f"source,target\nHello.,\n,Bonjour.\n{'A cat. ' * 80},{'Un chat. ' * 80}\n")
    res = cli("train", "nlp-translation", "--data", table, "--out", tmp_path / "run")
    _expect_user_error(res, "no sentence pairs left", "3 rows read", "empty side: 2",
                       "longer than 400 characters: 1", "data.max_chars")
    assert not (tmp_path / "run").exists()


def test_tokenizer_larger_than_the_model_vocabulary_is_refused(cli, tmp_path, small_pairs):
    checkpoint = _tiny_checkpoint(tmp_path / "small-vocab", small_pairs, vocab_size=50)
    res = cli("train", "nlp-translation", "--data", small_pairs, "--out", tmp_path / "run",
              f"model.name={checkpoint}")
    _expect_user_error(res, "but model", "embeds only 50", "model.tokenizer_name")
    assert not (tmp_path / "run").exists()


def test_check_reports_the_cleaning(cli):
    res = cli("check", "nlp-translation", "--json")
    assert res.code == 0, res.err
    found = json.loads(res.out)
    assert found["fatal"] == 0
    assert any("exact duplicates: 17" in f["message"] for f in found["findings"])


def test_a_folder_of_split_tables_keeps_its_splits_and_caps_validation(cli, tmp_path):
    import random

    make = _generator()
    rng = random.Random(5)
    pairs = list(dict.fromkeys(make.sentence(rng) for _ in range(120)))[:80]
    for name, rows in (("train", pairs[:60]), ("dev", pairs[60:70]), ("test", pairs[70:])):
        (tmp_path / f"{name}.tsv").write_text("source\ttarget\n" + "".join(f"{s}\t{t}\n" for s, t in rows))
    res = cli("check", "nlp-translation", "--data", tmp_path, "--json", "data.max_val_pairs=4")
    assert res.code == 0, res.err
    messages = " | ".join(f["message"] for f in json.loads(res.out)["findings"])
    assert "60 train / 4 val / 10 test" in messages
    assert "validation uses 4 pairs (data.max_val_pairs); the other 6 are left out" in messages


# --- units ------------------------------------------------------------------------------------
def test_clean_pairs_counts_each_filter_and_reuses_the_fitted_median():
    from dlkit_recipes.nlp_translation import clean_pairs

    pairs = [("a cat", "un chat"), ("a cat", "un chat"), ("", "vide"), ("dog", ""), ("x" * 50, "y" * 50),
             ("hi", "salut " * 5), ("same", "same"), ("the dog", "le chien")]
    cleaned = clean_pairs(pairs, max_chars=40, max_ratio=3.0)
    assert cleaned.kept == [0, 6, 7]
    assert cleaned.removed == {"empty side": 2, "exact duplicates": 1, "longer than 40 characters": 1,
                               f"length ratio over 3x the median ({cleaned.median_ratio:.2f})": 1}
    assert cleaned.identical == 1
    assert clean_pairs([("hi", "salut " * 5)], 40, 3.0, median_ratio=cleaned.median_ratio).kept == []


def test_corpus_scores_accumulate_batches_like_one_sacrebleu_call():
    import sacrebleu
    from dlkit_recipes.nlp_translation import sacrebleu_metrics

    hyps = ["the cat sits on the mat", "a dog barks", "hello there world"]
    refs = ["the cat sat on the mat", "the dog barks", "hello world"]
    scores = sacrebleu_metrics("13a")
    scores["bleu"].update(hyps[:2], refs[:2])
    scores["bleu"].update(hyps[2:], refs[2:])
    assert float(scores["bleu"].compute()) == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    scores["bleu"].reset()
    assert float(scores["bleu"].compute()) == 0.0
