"""nlp-translation: the default model learns the sample pair above its baselines, a checkpoint fine-tunes,
every data layout is read, validation decodes greedily, bad input is named.

One default training run on the sample data is shared by the tests that read a run directory; tests that
train a checkpoint of their own use a tiny BART and a small generated corpus so they take seconds.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from conftest import ROOT, expect_user_error, load_sample_generator

SAMPLE = ROOT / "sample_data" / "nlp_translation" / "pairs.tsv"
QUICK = ["train.log_every=5", "grad_monitor.every=50"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """The default model and config on the sample data, for 16 epochs instead of the (up to) ~76 that
    the default's 2000 steps (train.min_steps) plan.

    The warmup fraction is raised so that the warmup lasts about as many steps as the default's: a
    post-norm transformer trained from scratch needs it to start attending to the source.
    """
    from dlkit import jobs

    run = tmp_path_factory.mktemp("nt") / "run"
    jobs.train("nlp-translation", out=run, overrides=["train.epochs=16", "train.warmup=0.19", *QUICK])
    return run


@pytest.fixture(scope="module")
def small_pairs(tmp_path_factory) -> Path:
    """A clean 200-pair corpus from the sample-data generator (a different seed than the sample set)."""
    out = tmp_path_factory.mktemp("small_pairs")
    return load_sample_generator("nlp_translation").generate(out, seed=3, pairs=200)


def _pairs(n: int, seed: int = 5) -> list[tuple[str, str]]:
    make = load_sample_generator("nlp_translation")
    rng = random.Random(seed)
    return list(dict.fromkeys(make.sentence(rng) for _ in range(3 * n)))[:n]


def _write_tsv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("source\ttarget\n" + "".join(f"{s}\t{t}\n" for s, t in rows))
    return path


def _readable(cli, data: Path, *overrides: str) -> str:
    res = cli("check", "nlp-translation", "--data", data, "--json", *overrides)
    assert res.code == 0, res.err
    return " | ".join(f["message"] for f in json.loads(res.out)["findings"])


def _tiny_checkpoint(folder: Path, data: Path, vocab_size: int | None = None) -> Path:
    """A tiny BART + byte-level BPE tokenizer written with save_pretrained, like a downloaded checkpoint."""
    import pandas as pd
    from transformers import BartConfig, BartForConditionalGeneration

    from dlkit.hf import train_tokenizer

    df = pd.read_csv(data, sep="\t", keep_default_na=False)
    tokenizer = train_tokenizer(list(df["source"]) + list(df["target"]), 400, kind="bpe", lowercase=False)
    config = BartConfig(
        vocab_size=vocab_size or len(tokenizer),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        decoder_start_token_id=tokenizer.sep_token_id,
        forced_eos_token_id=None,
    )
    torch.manual_seed(0)
    BartForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# --- the default model ----------------------------------------------------------------------
def test_default_model_learns_the_sample_pair_above_its_baselines(trained):
    result = json.loads((trained / "eval.json").read_text())
    metrics, baselines = result["metrics"], result["baselines"]
    copy, words = baselines["copy_source"], baselines["word_by_word"]
    assert set(baselines) == {"copy_source", "word_by_word", "translation_memory"}
    assert result["monitor"] == "chrf" and result["strongest_baseline"] == "word_by_word"
    assert result["beats_baseline"] is True
    assert metrics["bleu"] > 10 * max(copy["bleu"], 1.0), (metrics, baselines)
    assert metrics["chrf"] > copy["chrf"] + 15, (metrics, baselines)
    assert (
        words["bleu"] > 10 * max(copy["bleu"], 1.0) and words["chrf"] > copy["chrf"] + 15
    )  # a real baseline
    assert metrics["bleu"] > words["bleu"] and metrics["chrf"] > words["chrf"], (metrics, baselines)
    details = result["details"]
    assert "tok:13a" in details["sacrebleu"]["bleu"] and "nc:6" in details["sacrebleu"]["chrf"]
    assert details["decoding"]["num_beams"] == 4
    examples = details["examples"]
    assert len(examples) == 5 and set(examples[0]) == {"source", "reference", "hypothesis"}
    assert all(ex["source"] and ex["hypothesis"] for ex in examples)
    state = json.loads((trained / "preprocess" / "state.json").read_text())
    assert state["cleaning"]["removed"]["empty side"] == 8
    assert state["cleaning"]["removed"]["exact duplicates"] == 17
    assert state["cleaning"]["identical_kept"] == 3
    lexicon = state["baselines"]["lexicon"]
    assert lexicon["cat"] == "chat" and lexicon["dogs"] == "chiens"


def test_evaluate_and_predict_need_only_the_run(cli, trained, tmp_path):
    before = json.loads((trained / "eval.json").read_text())
    res = cli("evaluate", trained, "--json")
    assert res.code == 0, res.err
    again = json.loads(res.out)
    assert again["metrics"]["bleu"] == pytest.approx(before["metrics"]["bleu"])
    assert again["baselines"] == before["baselines"]  # the lexicon comes from the state

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


def test_decoding_and_scoring_keys_change_at_predict_and_evaluate_time_model_keys_do_not(
    cli, trained, tmp_path
):
    res = cli(
        "predict", trained, "The cat sings.", "generate.num_beams=1", "generate.max_new_tokens=2", "--json"
    )
    assert res.code == 0, res.err
    short = json.loads(res.out)["predictions"][0]["translation"]
    res = cli("predict", trained, "The cat sings.", "--json")
    assert len(short) < len(json.loads(res.out)["predictions"][0]["translation"])
    res = cli("evaluate", trained, "eval.bleu_tokenize=char", "eval.examples=2", "--json")
    assert res.code == 0, res.err
    result = json.loads(res.out)
    assert "tok:char" in result["details"]["sacrebleu"]["bleu"] and len(result["details"]["examples"]) == 2
    expect_user_error(
        cli("predict", trained, "The cat sings.", "model.hidden=64"), "model.hidden", "cannot be changed"
    )


def test_native_model_translates_with_plain_transformers(cli, trained):
    from dlkit_recipes.nlp_translation.drafts import drafter
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    model = AutoModelForSeq2SeqLM.from_pretrained(trained / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(trained / "model")
    state = json.loads((trained / "preprocess" / "state.json").read_text())
    assert state["draft"] == "words"  # the default: the encoder reads the source and its word-by-word draft
    draft = drafter(state, state["draft"])(["The cat sings."])
    inputs = tokenizer(draft, ["The cat sings."], return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**inputs)  # beam width and length come from the saved generation config
    text = tokenizer.batch_decode(out, skip_special_tokens=True)[0].strip()
    res = cli("predict", trained, "The cat sings.", "--json")
    assert text and text == json.loads(res.out)["predictions"][0]["translation"]


def test_predict_with_only_an_empty_string_is_refused(cli, trained):
    expect_user_error(cli("predict", trained, ""), "nothing to translate")


def test_predict_names_a_missing_input_file(cli, trained):
    expect_user_error(cli("predict", trained, "missing.txt"), "input file 'missing.txt' does not exist")


def test_predict_reads_a_folder_and_keeps_the_input_order_across_chunks(cli, trained, tmp_path):
    sentences = [s for s, _ in _pairs(11, seed=9)]
    folder = tmp_path / "inputs"
    folder.mkdir()
    (folder / "a.txt").write_text("\n".join(sentences[:5]) + "\n")
    _write_tsv(folder / "b.tsv", [(s, "") for s in sentences[5:]])
    out = tmp_path / "out.jsonl"
    res = cli("predict", trained, folder, "--output", out, "predict.chunk_size=4", "data.batch_size=2")
    assert res.code == 0, res.err
    assert [json.loads(line)["source"] for line in out.read_text().splitlines()] == sentences


# --- validation is greedy, the final evaluation searches beams ------------------------------------
class _SpyModel(torch.nn.Module):
    """Logits for the loss, and a `generate` that records its beam width (whatever wraps the model)."""

    def __init__(self):
        super().__init__()
        self.beams: list[int] = []

    def forward(self, input_ids, attention_mask, labels):
        from types import SimpleNamespace

        return SimpleNamespace(logits=torch.zeros(*labels.shape, 50))

    def generate(self, input_ids, attention_mask, **kwargs):
        self.beams.append(kwargs["num_beams"])
        return input_ids


def test_step_decodes_by_stage_not_by_model_identity(trained):
    from dlkit_recipes.nlp_translation import NlpTranslation

    from dlkit.jobs.common import build_config
    from dlkit.run import Run

    run = Run.open(trained)
    recipe = NlpTranslation(build_config(NlpTranslation, None, [], base=run.config()))
    recipe.setup(run.state(), fresh=False)
    items = [{"input_ids": [5, 6, 3], "labels": [7, 3], "source": "A cat.", "target": "Un chat.", "id": 0}]
    batch = recipe.collate(items)
    model = _SpyModel()
    assert recipe.step(model, batch, "train")["preds"] == []
    recipe.step(model, batch, "val")
    recipe.step(model, batch, "test")
    recipe.step(model, batch, "val")
    assert model.beams == [1, 4, 1]  # generate.val_beams, generate.num_beams, the same model object


@pytest.mark.slow
def test_validation_under_ddp_is_greedy_and_sees_every_validation_pair(small_pairs, tmp_path):
    """torchrun, two CPU processes: the model is DDP-wrapped in training and plain in validation. Each
    epoch's val BLEU/chrF must be the greedy score of all 20 validation pairs (an even count, so no
    process pads its shard), not the beam search's."""
    import os
    import socket
    import subprocess
    import sys

    from dlkit_recipes.nlp_translation import NlpTranslation

    from dlkit.engine.inference import evaluate
    from dlkit.engine.loaders import make_loader
    from dlkit.jobs.common import build_config, load_best
    from dlkit.run import Run

    run_dir = tmp_path / "run"
    small = ["model.hidden=32", "model.ffn=64", "model.vocab_size=400", "data.batch_size=8"]
    with socket.socket() as probe:  # a free port: other tests may run torchrun at the same time
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}", "-m"]
    cmd += ["dlkit", "train", "nlp-translation", "--data", str(small_pairs), "--out", str(run_dir), "--json"]
    cmd += ["train.epochs=1", "train.lr=3e-3", "data.max_val_pairs=20", "generate.num_beams=4", *small]
    done = subprocess.run(
        cmd, cwd=ROOT, env={**os.environ, "CI": "1"}, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    logged = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])

    run = Run.open(run_dir)
    recipe = NlpTranslation(build_config(NlpTranslation, None, [], base=run.config()))
    data = recipe.load_data(small_pairs, run.state())
    recipe.setup(data.state, fresh=False)
    model, device = load_best(run, recipe, data.state)  # the one epoch's weights
    loader = make_loader(data.val, recipe.cfg, shuffle=False, collate=recipe.collate)
    assert len(data.val) == 20
    greedy, beam = (
        evaluate(model, recipe.step, loader, recipe.metrics(data.state), device, stage=s)
        for s in ("val", "test")
    )
    assert logged["val_bleu"] == pytest.approx(greedy["bleu"]) and logged["val_chrf"] == pytest.approx(
        greedy["chrf"]
    )
    assert greedy["chrf"] != pytest.approx(beam["chrf"])  # else this test could not tell them apart


# --- a local checkpoint -----------------------------------------------------------------------
def test_tiny_local_checkpoint_fine_tunes_through_the_same_command(cli, tmp_path, small_pairs):
    import shutil

    checkpoint = _tiny_checkpoint(tmp_path / "tiny-bart", small_pairs)
    run = tmp_path / "run"
    res = cli(
        "train",
        "nlp-translation",
        "--data",
        small_pairs,
        "--out",
        run,
        f"model.name={checkpoint}",
        "train.epochs=3",
        "train.lr=3e-3",
        "generate.num_beams=2",
        *QUICK,
    )
    assert res.code == 0, res.err
    assert res.err.count("fine-tuning pretrained weights") == 1
    losses = [json.loads(line)["train_loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert losses[-1] < losses[0]
    state = json.loads((run / "preprocess" / "state.json").read_text())
    assert "tokenizer.json" in state["tokenizer"]["files"]
    shutil.rmtree(checkpoint)  # the run keeps its own tokenizer and config: no need for the original folder
    res = cli("predict", run, "The dog sleeps.", "--json")
    assert res.code == 0, res.err
    assert "translation" in json.loads(res.out)["predictions"][0]
    from transformers import AutoModelForSeq2SeqLM

    assert AutoModelForSeq2SeqLM.from_pretrained(run / "model").config.d_model == 32


# --- layouts ----------------------------------------------------------------------------------
def test_a_folder_of_split_tables_keeps_its_splits_and_caps_validation(cli, tmp_path):
    pairs = _pairs(80)
    for name, rows in (("train", pairs[:60]), ("dev", pairs[60:70]), ("test", pairs[70:])):
        _write_tsv(tmp_path / f"{name}.tsv", rows)
    messages = _readable(cli, tmp_path, "data.max_val_pairs=4")
    assert "60 train / 4 val / 10 test" in messages
    assert "validation uses 4 pairs (data.max_val_pairs); the other 6 are left out" in messages


def test_a_folder_of_split_folders_with_aliases(cli, tmp_path):
    pairs = _pairs(80)
    _write_tsv(tmp_path / "train" / "corpus.tsv", pairs[:60])
    _write_tsv(tmp_path / "validation" / "corpus.tsv", pairs[60:68])
    (tmp_path / "Test").mkdir()
    (tmp_path / "Test" / "pairs.jsonl").write_text(
        "".join(json.dumps({"source": s, "target": t}) + "\n" for s, t in pairs[68:])
    )
    assert "60 train / 8 val / 12 test" in _readable(cli, tmp_path)
    (tmp_path / "validation" / "more.csv").write_text("source,target\nA cat.,Un chat.\n")
    expect_user_error(
        cli("train", "nlp-translation", "--data", tmp_path), "should hold one table", "corpus.tsv, more.csv"
    )


def test_a_split_column_with_aliases_and_a_carved_test_split(cli, tmp_path):
    pairs = _pairs(100)
    names = ["valid" if i < 10 else "Validation" if i < 20 else "train" if i % 2 else "" for i in range(100)]
    table = tmp_path / "pairs.tsv"
    table.write_text(
        "source\ttarget\tsplit\n"
        + "".join(f"{s}\t{t}\t{n}\n" for (s, t), n in zip(pairs, names, strict=True))
    )
    assert "68 train / 20 val / 12 test" in _readable(cli, tmp_path / "pairs.tsv")


# --- bad input ------------------------------------------------------------------------------
def test_missing_columns_are_named_with_the_ones_present(cli, tmp_path):
    table = tmp_path / "pairs.tsv"
    table.write_text("en\tfr\nThe cat.\tLe chat.\n")
    expect_user_error(
        cli("train", "nlp-translation", "--data", table), "has no column 'source'", "columns: en, fr"
    )


def test_corpus_empty_after_cleaning_says_which_filter_removed_what(cli, tmp_path):
    table = tmp_path / "pairs.csv"
    table.write_text(f"source,target\nHello.,\n,Bonjour.\n{'A cat. ' * 80},{'Un chat. ' * 80}\n")
    res = cli("train", "nlp-translation", "--data", table, "--out", tmp_path / "run")
    expect_user_error(
        res,
        "no sentence pairs left",
        "3 rows read",
        "empty side: 2",
        "longer than 400 characters: 1",
        "data.max_chars",
    )
    assert not (tmp_path / "run").exists()


def test_tokenizer_larger_than_the_model_vocabulary_is_refused(cli, tmp_path, small_pairs):
    checkpoint = _tiny_checkpoint(tmp_path / "small-vocab", small_pairs, vocab_size=50)
    res = cli(
        "train",
        "nlp-translation",
        "--data",
        small_pairs,
        "--out",
        tmp_path / "run",
        f"model.name={checkpoint}",
    )
    expect_user_error(res, "but model", "embeds only 50", "model.tokenizer_name")
    assert not (tmp_path / "run").exists()


def test_check_reports_the_cleaning(cli):
    res = cli("check", "nlp-translation", "--json")
    assert res.code == 0, res.err
    found = json.loads(res.out)
    assert found["fatal"] == 0
    assert any("exact duplicates: 17" in f["message"] for f in found["findings"])


# --- units ------------------------------------------------------------------------------------
def test_clean_pairs_counts_each_filter_and_reuses_the_fitted_median():
    from dlkit_recipes.nlp_translation.data import clean_pairs

    pairs = [
        ("a cat", "un chat"),
        ("a cat", "un chat"),
        ("", "vide"),
        ("dog", ""),
        ("x" * 50, "y" * 50),
        ("hi", "salut " * 5),
        ("same", "same"),
        ("the dog", "le chien"),
    ]
    cleaned = clean_pairs(pairs, max_chars=40, max_ratio=3.0)
    assert cleaned.kept == [0, 6, 7]
    assert cleaned.removed == {
        "empty side": 2,
        "exact duplicates": 1,
        "longer than 40 characters": 1,
        f"length ratio over 3x the median ({cleaned.median_ratio:.2f})": 1,
    }
    assert cleaned.identical == 1
    assert clean_pairs([("hi", "salut " * 5)], 40, 3.0, median_ratio=cleaned.median_ratio).kept == []


def test_corpus_scores_are_torchmetrics_that_merge_like_one_sacrebleu_call():
    import sacrebleu
    from dlkit_recipes.nlp_translation.metrics import SacreScore, translation_metrics
    from torchmetrics import Metric

    hyps = ["the cat sits on the mat", "a dog barks", "hello there world", "l'été, ça va"]
    refs = ["the cat sat on the mat", "the dog barks", "hello world", "l'été ça va"]
    scores = translation_metrics("13a")
    assert all(isinstance(m, Metric) for m in scores.values())
    scores["bleu"].update(hyps[:2], refs[:2])
    scores["bleu"].update(hyps[2:], refs[2:])
    assert float(scores["bleu"].compute()) == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert scores["bleu"].pairs() == list(zip(hyps, refs, strict=True))
    # two processes' states, reduced as under DDP ("cat" of the byte tensors)
    first, second = SacreScore("chrf"), SacreScore("chrf")
    first.update(hyps[:3], refs[:3])
    second.update(hyps[3:], refs[3:])
    first.merge_state(second)
    assert float(first.compute()) == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
    scores["bleu"].reset()
    assert scores["bleu"].pairs() == []


def test_translation_memory_recalls_the_nearest_source_and_copies_what_it_does_not_know():
    from dlkit_recipes.nlp_translation.baselines import fit_memory, memory_lookup

    train = [("Open the file", "Ouvrir le fichier"), ("Close the window", "Fermer la fenêtre")]
    recalled = [("Open the files", "Ouvrir les fichiers"), ("Close this window", "Fermer cette fenêtre")]
    memory = fit_memory(train, recalled)
    assert memory["pairs"] == [list(p) for p in train]
    recall = memory_lookup(json.loads(json.dumps(memory)))  # as stored in state.json
    assert recall(["Open the files", "Close a window", "xyz", ""]) == [
        "Ouvrir le fichier",
        "Fermer la fenêtre",
        "xyz",  # nothing in common with any memory source: copied
        "",
    ]
    # where sources that look alike are left untranslated (names, codes), copying wins on validation:
    # the fitted threshold then keeps fuzzy matches out
    untranslated = [("Open a folder", "Open a folder"), ("Close all windows", "Close all windows")]
    strict = fit_memory(train, untranslated)
    assert strict["threshold"] > memory["threshold"]
    assert memory_lookup(strict)(["Open a folder", "Open the file"]) == ["Open a folder", "Ouvrir le fichier"]


def test_translation_memory_is_the_strongest_baseline_on_near_repeats(cli, tmp_path):
    """UI catalogues repeat themselves ('Save.' / 'Save!'): there the memory beats copying and the lexicon,
    a one-epoch model does not beat it, eval.json says so, and `evaluate` re-scores it from the run.
    Targets are spelt backwards, which no word-for-word lexicon can build but a memory recalls."""
    pairs = _pairs(150)
    pairs = [(s, t[::-1]) for s, t in pairs] + [(s[:-1] + "!", (t[:-1] + "!")[::-1]) for s, t in pairs]
    data = _write_tsv(tmp_path / "pairs.tsv", pairs)
    run = tmp_path / "run"
    small = ["model.hidden=32", "model.ffn=64", "model.vocab_size=400", "data.batch_size=16"]
    res = cli("train", "nlp-translation", "--data", data, "--out", run, "train.epochs=1", *small, *QUICK)
    assert res.code == 0, res.err
    result = json.loads((run / "eval.json").read_text())
    baselines = result["baselines"]
    assert set(baselines) == {"copy_source", "word_by_word", "translation_memory"}
    assert result["strongest_baseline"] == "translation_memory" and result["beats_baseline"] is False
    memory = baselines["translation_memory"]
    assert memory["chrf"] > baselines["word_by_word"]["chrf"] + 10, baselines
    state = json.loads((run / "preprocess" / "state.json").read_text())
    stored = state["baselines"]["memory"]
    assert len(stored["pairs"]) == state["counts"]["train"] and all(len(p) == 2 for p in stored["pairs"])
    again = cli("evaluate", run, "--json")
    assert again.code == 0, again.err
    assert json.loads(again.out)["baselines"] == baselines


def test_word_by_word_lexicon_learns_words_and_keeps_unknown_ones():
    from dlkit_recipes.nlp_translation.baselines import fit_lexicon, translate_words

    lexicon = fit_lexicon(_pairs(300))
    assert lexicon["cat"] == "chat" and lexicon["apples"] == "pommes"
    assert translate_words(lexicon, "The cat sees Zorro.").startswith("L")
    assert translate_words(lexicon, "The cat sees Zorro.").endswith("chat voit Zorro.")
    assert translate_words(lexicon, "") == ""
