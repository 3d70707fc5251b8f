"""nlp-sentiment: train -> evaluate -> predict through the real CLI, both baselines, every data layout,
plain-transformers loading, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import ROOT, expect_user_error, load_sample_generator, train_ok

SAMPLE = ROOT / "sample_data" / "nlp_sentiment" / "reviews.csv"
SMALL = [
    "model.hidden=32",
    "model.heads=2",
    "model.vocab_size=600",
    "data.batch_size=16",
    "train.log_every=2",
]


@pytest.fixture(scope="module")
def small_reviews() -> list[tuple[str, str]]:
    """240 distinct generated reviews, half positive."""
    import numpy as np

    generator = load_sample_generator("nlp_sentiment")
    rng = np.random.default_rng(3)
    rows = {generator.review(rng, i % 2 == 0): "positive" if i % 2 == 0 else "negative" for i in range(260)}
    return list(rows.items())[:240]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, small_reviews) -> Path:
    """A hub-style folder (config.json, model.safetensors, tokenizer files) made by save_pretrained."""
    from transformers import BertConfig, BertForSequenceClassification

    from dlkit.hf import train_tokenizer

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = train_tokenizer([t for t, _ in small_reviews], vocab_size=500)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=3,
        pad_token_id=tokenizer.pad_token_id,
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def rnn_run(tmp_path_factory, small_reviews) -> Path:
    """A one-epoch RNN on the small reviews: a cheap run for predict and evaluate tests."""
    from dlkit import jobs

    folder = tmp_path_factory.mktemp("ns_rnn")
    data = _write_csv(folder / "reviews.csv", small_reviews)
    run = folder / "run"
    jobs.train(
        "nlp-sentiment", data=str(data), out=run, overrides=["model.name=rnn", "train.epochs=1", *SMALL]
    )
    return run


def _write_csv(path: Path, rows: list[tuple], header=("text", "label"), encoding="utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding=encoding) as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _load_native(folder: Path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    return AutoModelForSequenceClassification.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


def _readable(cli, data: Path) -> str:
    res = cli("check", "nlp-sentiment", "--data", data, "--json", "model.vocab_size=500")
    assert res.code == 0, res.err
    return next(f for f in json.loads(res.out)["findings"] if f["check"] == "data readable")["message"]


# --- the default model on the sample data ------------------------------------------------------
def test_default_ngram_model_learns_judges_itself_honestly_and_loads_from_its_native_folder(cli, tmp_path):
    import torch
    from dlkit_recipes.nlp_sentiment.baselines import features
    from dlkit_recipes.nlp_sentiment.ngrams import NgramClassifier
    from safetensors.torch import load_file

    run = tmp_path / "run"
    res = cli("train", "nlp-sentiment", "--out", run, "--json")
    assert res.code == 0, res.err
    result = json.loads(res.out)
    metrics, baselines = result["metrics"], result["baselines"]
    majority, logreg = baselines["majority_class"]["accuracy"], baselines["tfidf_logreg"]["accuracy"]
    assert metrics["accuracy"] > 0.65 and majority < 0.6 and result["strongest_baseline"] == "tfidf_logreg"
    assert result["beats_baseline"] == (metrics["accuracy"] > logreg)  # the verdict follows the numbers
    state = json.loads((run / "preprocess" / "state.json").read_text())
    assert state["architecture"] == "ngram" and "tokenizer" not in state
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["name"] == "ngram" and config["train"]["lr"] == 0.01

    res = cli("evaluate", run, "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["metrics"]["accuracy"] == metrics["accuracy"]

    texts = ["an absolutely wonderful film, I loved it", "dreadful food and rude staff. Avoid."]
    res = cli("predict", run, *texts)
    assert res.code == 0, res.err
    records = [json.loads(line) for line in res.out.splitlines()]
    assert [r["label"] for r in records] == ["positive", "negative"]

    layout = json.loads((run / "model" / "ngram_config.json").read_text())  # weights + vocabularies
    weights = load_file(str(run / "model" / "model.safetensors"))
    model = NgramClassifier(weights["wide.weight"].shape[0], 2, layout["dim"], 0.0).eval()
    model.load_state_dict(weights)
    matrix = features({"blocks": {k: v for k, v in layout["blocks"].items()}}, texts).tocsr()
    ids = torch.tensor(matrix.indices, dtype=torch.long).unsqueeze(0)[:, : matrix.indptr[1]]
    bag = torch.tensor(matrix.data, dtype=torch.float32).unsqueeze(0)[:, : matrix.indptr[1]]
    with torch.no_grad():
        probs = model(ids, torch.ones_like(ids), bag).logits.softmax(-1)[0]
    assert probs.tolist() == pytest.approx([records[0]["probs"][c] for c in layout["classes"]], abs=1e-4)


def test_bert_tiny_beats_both_baselines_predicts_and_loads_with_plain_transformers(cli, tmp_path):
    import torch

    run = tmp_path / "run"
    res = cli("train", "nlp-sentiment", "--out", run, "--json", "model.name=bert-tiny")
    assert res.code == 0, res.err
    result = json.loads(res.out)
    metrics, baselines = result["metrics"], result["baselines"]
    majority, logreg = baselines["majority_class"], baselines["tfidf_logreg"]
    assert set(baselines) == {"majority_class", "tfidf_logreg"}
    assert result["strongest_baseline"] == "tfidf_logreg" and result["beats_baseline"] is True
    assert metrics["accuracy"] > 0.72 and majority["accuracy"] < 0.6
    assert metrics["macro_f1"] > 0.7 > 0.4 > majority["macro_f1"]
    assert metrics["accuracy"] > logreg["accuracy"] > 0.65 and metrics["macro_f1"] > logreg["macro_f1"]
    assert len(metrics["precision"]) == len(metrics["recall"]) == 2
    saved = json.loads((run / "eval.json").read_text())
    assert saved["metrics"]["confusion_matrix"] == metrics["confusion_matrix"]
    assert (
        saved["details"]["majority_class"] == "positive"
        and saved["details"]["tfidf_logreg"]["features"]["word"] > 500
        and saved["details"]["tfidf_logreg"]["features"]["char"] > 1000
    )
    assert "different labels" in res.err and "duplicate row" in res.err and "empty text" in res.err
    state = json.loads((run / "preprocess" / "state.json").read_text())
    assert state["classes"] == ["negative", "positive"] and state["architecture"] == "bert-tiny"
    assert json.loads(state["tokenizer"]["json"])["model"]["type"] == "WordPiece"

    res = cli("evaluate", run, "--json")  # both baselines again, from the run's state alone
    assert res.code == 0, res.err
    again = json.loads(res.out)
    assert again["metrics"]["accuracy"] == metrics["accuracy"]
    assert again["baselines"] == baselines

    res = cli(
        "predict", run, "an absolutely wonderful film, I loved it", "dreadful food and rude staff. Avoid."
    )
    assert res.code == 0, res.err
    records = [json.loads(line) for line in res.out.splitlines()]
    assert [r["label"] for r in records] == ["positive", "negative"]
    assert records[0]["text"] == "an absolutely wonderful film, I loved it"
    assert abs(sum(records[0]["probs"].values()) - 1) < 1e-4

    texts = tmp_path / "texts.txt"
    texts.write_text("the pool was lovely\n\nthe waiter was rude<br />\n")
    table = _write_csv(
        tmp_path / "new.csv", [("a superb, delightful book",), ("a boring, tedious book",)], ("text",)
    )
    out = tmp_path / "preds.jsonl"
    res = cli("predict", run, texts, table, "--output", out)
    assert res.code == 0, res.err
    predicted = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in predicted] == [
        "the pool was lovely",
        "the waiter was rude<br />",
        "a superb, delightful book",
        "a boring, tedious book",
    ]
    # files give the same answers as the same texts typed inline (labels of borderline texts can
    # move with the CPU's float rounding, so the check is consistency, not a fixed label)
    res = cli("predict", run, *[r["text"] for r in predicted])
    assert res.code == 0, res.err
    inline = [json.loads(line) for line in res.out.splitlines()]
    assert [r["label"] for r in predicted] == [r["label"] for r in inline]
    for got, want in zip(predicted, inline, strict=True):
        assert got["probs"] == pytest.approx(want["probs"], abs=1e-4)

    model, tokenizer = _load_native(run / "model")  # no dlkit involved from here on
    assert model.config.id2label == {0: "negative", 1: "positive"}
    assert model.config.label2id == {"negative": 0, "positive": 1}
    with torch.no_grad():
        probs = model(**tokenizer(["the pool was lovely"], return_tensors="pt")).logits.softmax(-1)[0]
    assert probs.tolist() == pytest.approx(
        [predicted[0]["probs"]["negative"], predicted[0]["probs"]["positive"]], abs=1e-4
    )


# --- other models --------------------------------------------------------------------------------
def test_rnn_with_class_weights_learns_and_saves_its_tokenizer(cli, tmp_path):
    run = tmp_path / "run"
    result = train_ok(
        cli,
        "nlp-sentiment",
        run,
        "model.name=rnn",
        "model.rnn=gru",
        "model.hidden=64",
        "loss.class_weights=balanced",
        "train.epochs=4",
    )
    majority = result["baselines"]["majority_class"]
    assert result["metrics"]["macro_f1"] > 0.5 > majority["macro_f1"]  # majority: 0.36
    assert result["metrics"]["accuracy"] > majority["accuracy"]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(run / "model")
    assert tokenizer("not good")["input_ids"][0] == tokenizer.cls_token_id
    assert (run / "model" / "model.safetensors").is_file()
    assert json.loads((run / "model" / "rnn_config.json").read_text())["cell"] == "gru"
    res = cli("predict", run, "truly superb, highly recommended")
    assert res.code == 0, res.err
    assert json.loads(res.out)["label"] == "positive"


def test_local_hub_style_checkpoint_fine_tunes_through_the_same_command(
    cli, tmp_path, tiny_checkpoint, small_reviews
):
    import shutil

    data = _write_csv(tmp_path / "reviews.csv", small_reviews)
    copy = tmp_path / "checkpoint"
    shutil.copytree(tiny_checkpoint, copy)
    run = tmp_path / "run"
    res = cli(
        "train",
        "nlp-sentiment",
        "--data",
        data,
        "--out",
        run,
        f"model.name={copy}",
        "train.epochs=1",
        "data.batch_size=16",
    )
    assert res.code == 0, res.err
    assert res.err.count("fine-tuning pretrained weights") == 1
    state = json.loads((run / "preprocess" / "state.json").read_text())
    assert state["architecture"] == "checkpoint" and state["checkpoint"] == str(copy.resolve())
    assert "tokenizer.json" in state["tokenizer"]["files"]  # the checkpoint's own tokenizer, kept in the run
    assert state["max_length"] == 64  # capped by the checkpoint's position embeddings
    assert "lr: 5.0e-05" in (run / "config.yaml").read_text()  # the fine-tuning default

    model, tokenizer = _load_native(run / "model")
    assert model.config.num_labels == 2 and model.config.id2label == {0: "negative", 1: "positive"}
    assert tokenizer("a lovely film")["input_ids"][0] == tokenizer.cls_token_id
    start = _load_native(copy)[0].bert.embeddings.word_embeddings.weight
    tuned = model.bert.embeddings.word_embeddings.weight
    assert (tuned - start).abs().max() < 0.01  # fine-tuned from the checkpoint's weights, not re-initialised

    shutil.rmtree(copy)  # evaluate and predict need only the run directory
    res = cli("evaluate", run, "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["examples"] > 0
    res = cli("predict", run, "a lovely film")
    assert res.code == 0, res.err
    assert set(json.loads(res.out)["probs"]) == {"negative", "positive"}


# --- formats, encodings and layouts -----------------------------------------------------------------
def test_latin1_tsv_needs_data_encoding_then_trains(cli, tmp_path, small_reviews):
    rows = [(f"{t} Café crème.", label) for t, label in small_reviews]
    data = tmp_path / "reviews.tsv"
    data.write_bytes(
        ("review\tsentiment\n" + "".join(f"{t}\t{label}\n" for t, label in rows)).encode("latin-1")
    )
    columns = ["data.text_column=review", "data.label_column=sentiment"]
    expect_user_error(
        cli("train", "nlp-sentiment", "--data", data, *columns),
        "reviews.tsv",
        "not valid utf-8",
        "data.encoding=latin-1",
    )
    run = tmp_path / "run"
    result = train_ok(
        cli,
        "nlp-sentiment",
        run,
        "--data",
        data,
        "data.encoding=latin-1",
        *columns,
        "model.name=rnn",
        "train.epochs=1",
        *SMALL,
    )
    assert result["examples"] > 0
    state = json.loads((run / "preprocess" / "state.json").read_text())
    assert "café" in json.loads(state["tokenizer"]["json"])["model"]["vocab"]
    # a predict-time encoding for new files is inference-safe; the model's keys are not
    new = tmp_path / "new.txt"
    new.write_bytes("Un café superbe, highly recommended.\n".encode("latin-1"))
    res = cli("predict", run, new, "data.encoding=latin-1", "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["predictions"][0]["text"] == "Un café superbe, highly recommended."
    expect_user_error(cli("predict", run, new, "model.hidden=64"), "model.hidden", "cannot be changed")


def test_jsonl_split_column_with_aliases_keeps_the_given_splits(cli, tmp_path, small_reviews):
    data = tmp_path / "reviews.jsonl"
    splits = ["test" if i % 5 == 0 else "Dev" if i % 5 == 1 else "train" for i in range(len(small_reviews))]
    pd.DataFrame(
        {"text": [t for t, _ in small_reviews], "label": [lb for _, lb in small_reviews], "split": splits}
    ).to_json(data, orient="records", lines=True)
    assert _readable(cli, data) == "144 train / 48 val / 48 test examples"
    result = train_ok(cli, "nlp-sentiment", tmp_path / "run", "--data", data, "train.epochs=1", *SMALL)
    assert result["examples"] == splits.count("test")


def test_split_column_with_a_bad_name_is_refused_by_row(cli, tmp_path, small_reviews):
    rows = [(t, lb, "holdout" if i == 3 else "") for i, (t, lb) in enumerate(small_reviews)]
    data = _write_csv(tmp_path / "reviews.csv", rows, ("text", "label", "split"))
    expect_user_error(cli("train", "nlp-sentiment", "--data", data), "row 5", "'holdout'", "valid")


def test_folder_of_split_tables_keeps_them_and_carves_validation_by_label(cli, tmp_path, small_reviews):
    folder = tmp_path / "data"
    _write_csv(folder / "train.csv", small_reviews[:200])
    _write_csv(folder / "test.csv", small_reviews[200:])
    assert _readable(cli, folder) == "170 train / 30 val / 40 test examples"


def test_folder_of_split_folders_with_aliases(cli, tmp_path, small_reviews):
    folder = tmp_path / "data"
    _write_csv(folder / "train" / "reviews.csv", small_reviews[:180])
    for name in ("valid", "Test"):
        (folder / name).mkdir()
    frame = pd.DataFrame(small_reviews[180:210], columns=["text", "label"])
    frame.to_json(folder / "valid" / "part.jsonl", orient="records", lines=True)
    (folder / "Test" / "reviews.tsv").write_text(
        "text\tlabel\n" + "".join(f"{t}\t{lb}\n" for t, lb in small_reviews[210:])
    )
    assert _readable(cli, folder) == "180 train / 30 val / 30 test examples"
    (folder / "dev").mkdir()
    expect_user_error(
        cli("train", "nlp-sentiment", "--data", folder), "two folders for the val split", "dev/", "valid/"
    )


# --- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "column, present",
    [("data.text_column=review", "text, label"), ("data.label_column=stars", "text, label")],
)
def test_missing_text_or_label_column_names_those_present(cli, column, present):
    wanted = column.split("=")[1]
    expect_user_error(cli("train", "nlp-sentiment", column), f"no column '{wanted}'", f"(columns: {present})")


def test_only_empty_texts(cli, tmp_path):
    data = _write_csv(tmp_path / "empty.csv", [("", "positive"), ("<br />", "negative"), ("  ", "positive")])
    expect_user_error(cli("train", "nlp-sentiment", "--data", data), "empty.csv", "empty text", "'text'")


def test_single_class(cli, tmp_path, small_reviews):
    data = _write_csv(tmp_path / "one.csv", [(t, "positive") for t, _ in small_reviews])
    expect_user_error(cli("train", "nlp-sentiment", "--data", data), "single class", "'label'", "two or more")


def test_model_folder_without_config_is_not_a_checkpoint(cli, tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"not a model")
    expect_user_error(
        cli("train", "nlp-sentiment", f"model.name={folder}"),
        "is not a transformers checkpoint",
        "no config.json",
        "save_pretrained",
    )


def test_model_folder_with_a_broken_config(cli, tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "no-such-architecture"}')
    expect_user_error(
        cli("train", "nlp-sentiment", f"model.name={folder}"), "cannot be loaded as a transformers checkpoint"
    )


def test_unknown_hub_name_offline(cli):
    expect_user_error(
        cli("train", "nlp-sentiment", "model.name=nobody/no-such-model-xyz"),
        "'nobody/no-such-model-xyz'",
        "HF_HUB_OFFLINE",
    )


def test_predict_missing_file_and_evaluate_unknown_label(cli, tmp_path, rnn_run):
    expect_user_error(cli("predict", rnn_run, tmp_path / "missing.csv"), "missing.csv", "does not exist")
    expect_user_error(
        cli("evaluate", rnn_run, "--data", _write_csv(tmp_path / "new.csv", [("fine", "neutral")])),
        "not trained on: neutral",
    )


def test_a_winning_tfidf_baseline_is_named_kept_as_json_and_rescored_from_the_run(cli, tmp_path):
    """One word decides the label: the word+char TF-IDF model finds it, an RNN that barely moves
    (lr 1e-9) does not, so eval.json names the baseline as the one to beat and says it was not beaten."""
    import random

    rng = random.Random(0)
    filler = "the a film plot cast music scene story actor ending pace score script light".split()
    rows = []
    for i in range(200):
        words = rng.sample(filler, 6) + ["superb" if i % 2 else "dreadful"]
        rng.shuffle(words)
        rows.append((" ".join(words) + f" {i}", "positive" if i % 2 else "negative"))
    run = tmp_path / "run"
    data = _write_csv(tmp_path / "keyword.csv", rows)
    saved = train_ok(
        cli, "nlp-sentiment", run, "--data", data, "model.name=rnn", "train.epochs=1", "train.lr=1e-9", *SMALL
    )
    logreg = saved["baselines"]["tfidf_logreg"]["accuracy"]
    assert logreg > 0.95 > 0.7 > saved["metrics"]["accuracy"]
    assert saved["strongest_baseline"] == "tfidf_logreg" and saved["beats_baseline"] is False
    fitted = json.loads((run / "preprocess" / "state.json").read_text())["baselines"]["tfidf_logreg"]
    word, char = fitted["blocks"]["word"], fitted["blocks"]["char"]
    assert "superb" in word["terms"] and "perb" in char["terms"]
    assert len(word["terms"]) == len(word["idf"]) and len(char["terms"]) == len(char["idf"])
    assert len(fitted["coef"][0]) == len(word["terms"]) + len(char["terms"])
    assert not [p for p in run.rglob("*") if p.suffix in (".pkl", ".pickle", ".joblib")]
    res = cli("evaluate", run, "--json")  # from the run's state alone
    assert res.code == 0, res.err
    again = json.loads(res.out)
    assert again["baselines"] == saved["baselines"] and again["strongest_baseline"] == "tfidf_logreg"
    res = cli("evaluate", run)  # the console names the baseline that won
    assert res.code == 0 and "tfidf_logreg" in res.err, res.err


def test_predict_keeps_the_input_order_across_chunks(cli, tmp_path, rnn_run):
    texts = [
        ("a lovely, truly wonderful and delightful film " * (i % 4 + 1)).strip() + f" {i}" for i in range(11)
    ]
    folder = tmp_path / "inputs"
    folder.mkdir()
    (folder / "a.txt").write_text("\n".join(texts[:6]) + "\n")
    (folder / "b.txt").write_text("\n".join(texts[6:]) + "\n")
    out = tmp_path / "preds.csv"
    res = cli("predict", rnn_run, folder, "--output", out, "predict.chunk_size=4", "data.batch_size=2")
    assert res.code == 0, res.err
    assert pd.read_csv(out)["text"].tolist() == texts
    assert not (tmp_path / "preds_outputs").exists()  # no side files for text classification


def test_check_reports_conflicting_labels_and_balance(cli, tmp_path, small_reviews):
    rows = small_reviews + [
        (small_reviews[0][0], "negative" if small_reviews[0][1] == "positive" else "positive")
    ]
    data = _write_csv(tmp_path / "reviews.csv", rows)
    res = cli("check", "nlp-sentiment", "--data", data, "--json", "model.vocab_size=500")
    assert res.code == 0, res.err
    findings = {f["check"]: f for f in json.loads(res.out)["findings"]}
    assert findings["class balance"]["severity"] == "ok"
    assert "train: negative" in findings["class balance"]["message"]
    assert any("different labels" in f["message"] for f in json.loads(res.out)["findings"])


# --- units ------------------------------------------------------------------------------------------
def test_duplicates_and_conflicts_keep_the_most_frequent_label():
    from dlkit.data.textdata import drop_duplicate_texts

    frame = pd.DataFrame({"text": ["a", "b", "a", "a", "b"], "label": ["pos", "neg", "neg", "neg", "neg"]})
    kept, notes = drop_duplicate_texts(frame, ["text"], "label")
    assert kept.to_dict("records") == [{"text": "a", "label": "neg"}, {"text": "b", "label": "neg"}]
    assert "1 text(s) appear with different labels" in notes[0] and "dropped 3 duplicate" in notes[1]


def test_pad_collate_pads_to_the_longest_in_the_batch_and_length_order_sorts_in_blocks():
    from dlkit.hf import length_order, pad_collate

    batch = pad_collate(
        [{"input_ids": [5, 6, 7], "label": 1, "id": "a"}, {"input_ids": [8], "label": 0, "id": "b"}],
        {"input_ids": 0},
    )
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["label"].tolist() == [1, 0] and batch["id"] == ["a", "b"]
    assert length_order([3, 1, 2, 1]) == [1, 3, 2, 0]
    assert length_order([3, 1, 2, 1, 0], block=2) == [1, 0, 3, 2, 4]


def test_tfidf_baseline_from_state_scores_like_the_fitted_scikit_learn_model(small_reviews):
    import numpy as np
    from dlkit_recipes.nlp_sentiment.baselines import fit_tfidf_logreg, tfidf_logits
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts = [t for t, _ in small_reviews]
    labels = [int(lb == "positive") for _, lb in small_reviews]
    train, val = (texts[:200], labels[:200]), (texts[200:], labels[200:])
    params = json.loads(json.dumps(fit_tfidf_logreg(train, val, 2, balanced=False, seed=0)))  # via JSON
    assert set(params["blocks"]) == {"word", "char"}
    assert "not" in params["blocks"]["word"]["terms"] and " go" in params["blocks"]["char"]["terms"]
    words = TfidfVectorizer(ngram_range=(1, 2), max_features=20_000, sublinear_tf=True)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), max_features=30_000, sublinear_tf=True)
    x = hstack([words.fit_transform(train[0]), chars.fit_transform(train[0])]).tocsr()
    x_val = hstack([words.transform(val[0]), chars.transform(val[0])]).tocsr()
    model = LogisticRegression(C=params["C"], max_iter=2000, random_state=0).fit(x, train[1])
    logits = tfidf_logits(params, val[0]).numpy()
    assert np.allclose(logits[:, 1] - logits[:, 0], model.decision_function(x_val), atol=1e-4)
    assert params["val_accuracy"] == pytest.approx(float((model.predict(x_val) == val[1]).mean()), abs=1e-4)


def test_lr_is_resolved_before_the_run_and_class_weights_are_inverse_frequencies():
    from dlkit_recipes.nlp_sentiment import NlpSentiment

    from dlkit.jobs.common import build_config

    cfg = NlpSentiment.resolve_config(build_config(NlpSentiment, None, ["loss.class_weights=balanced"]))
    assert cfg["train"]["lr"] == 1e-2  # the n-gram model's default
    scratch = NlpSentiment.resolve_config(build_config(NlpSentiment, None, ["model.name=bert-tiny"]))
    assert scratch["train"]["lr"] == 1e-3  # a transformer from scratch
    tuned = NlpSentiment.resolve_config(build_config(NlpSentiment, None, ["model.name=some/checkpoint"]))
    assert tuned["train"]["lr"] == 5e-5
    loss = NlpSentiment(cfg).make_loss({"classes": ["neg", "pos"], "class_counts": {"neg": 25, "pos": 75}})
    assert loss.weight.tolist() == pytest.approx([2.0, 2 / 3])


def test_vocab_size_auto_grows_with_the_training_text():
    from dlkit_recipes.nlp_sentiment.data import vocab_size

    assert vocab_size("auto", ["a short review"] * 100) == 1000  # a small corpus: the floor
    assert vocab_size("auto", ["one two three four"] * 20_000) == 2500  # 80k words
    assert vocab_size("auto", ["one two three four"] * 200_000) == 8000  # capped
    assert vocab_size(600, ["anything"]) == 600
