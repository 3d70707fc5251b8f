"""nlp-chat: the three input formats, cleaning, loss on assistant tokens only, bad inputs (exit 2 naming the
file and line), and a tiny trained run used through evaluate, predict and `dlkit chat` (a pipe and a
pseudo-terminal)."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import expect_user_error, load_sample_generator

TINY = [
    "model.layers=1",
    "model.hidden=32",
    "model.heads=2",
    "model.ffn=64",
    "model.vocab_size=400",
    "data.batch_size=16",
    "train.epochs=1",
    "train.max_steps=8",
    "generate.max_new_tokens=12",
]
CONVERSATIONS = [
    [("user", "Hi"), ("assistant", "Hello! How can I help?"), ("user", "When are you open?"),
     ("assistant", "From 9am to 6pm.")],
    [("system", "You are a shop assistant."), ("user", "Do you deliver to York?"),
     ("assistant", "Yes, we deliver to York.")],
]  # fmt: skip
EXPECTED = [  # (context, response) of every assistant turn
    ([("user", "Hi")], "Hello! How can I help?"),
    (
        [("user", "Hi"), ("assistant", "Hello! How can I help?"), ("user", "When are you open?")],
        "From 9am to 6pm.",
    ),
    (
        [("system", "You are a shop assistant."), ("user", "Do you deliver to York?")],
        "Yes, we deliver to York.",
    ),
]
DATA = {"encoding": "utf-8", "context_column": "context", "response_column": "response",
        "turn_separator": " ||| ", "max_turns": 6, "max_chars": 1000}  # fmt: skip


def _jsonl(path: Path, conversations) -> Path:
    lines = [json.dumps({"messages": [{"role": r, "content": t} for r, t in c]}) for c in conversations]
    path.write_text("\n".join(lines) + "\n")
    return path


def _examples(path: Path, d: dict = DATA):
    from dlkit_recipes.nlp_chat.data import read_examples

    examples, _, cleaning, _ = read_examples(path, d)
    return [(e.context, e.response) for e in examples], cleaning.counts


def test_jsonl_yaml_json_and_csv_give_the_same_exchanges(tmp_path):
    import yaml

    jsonl = _jsonl(tmp_path / "chats.jsonl", CONVERSATIONS)
    as_yaml = [[{"role": r, "content": t} for r, t in CONVERSATIONS[1]]]
    plain = [[t for _, t in CONVERSATIONS[0]]]  # plain strings alternate user / assistant
    (tmp_path / "chats.yaml").write_text(yaml.safe_dump(plain + as_yaml))
    (tmp_path / "chats.json").write_text(json.dumps(plain + as_yaml, indent=2))
    (tmp_path / "pairs.csv").write_text(
        "context,response\nHi,Hello! How can I help?\n"
        '"Hi ||| Hello! How can I help? ||| When are you open?",From 9am to 6pm.\n'
    )
    assert _examples(jsonl)[0] == EXPECTED
    assert _examples(tmp_path / "chats.yaml")[0] == EXPECTED
    assert _examples(tmp_path / "chats.json")[0] == EXPECTED
    assert _examples(tmp_path / "pairs.csv")[0] == EXPECTED[:2]


def test_max_turns_keeps_the_system_prompt_and_the_newest_turns(tmp_path):
    path = _jsonl(tmp_path / "c.jsonl", [[("system", "Be brief."), *CONVERSATIONS[0]]])
    context, response = _examples(path, {**DATA, "max_turns": 1})[0][1]
    assert context == [("system", "Be brief."), ("user", "When are you open?")]
    assert response == "From 9am to 6pm."


def test_cleaning_reports_empty_duplicate_over_long_and_unanswered(tmp_path):
    path = _jsonl(
        tmp_path / "c.jsonl",
        [CONVERSATIONS[0], CONVERSATIONS[0], [("user", "Hello"), ("assistant", "  ")],
         [("user", "Story?"), ("assistant", "once " * 300)], [("user", "Anyone?")]],
    )  # fmt: skip
    examples, counts = _examples(path)
    assert examples == EXPECTED[:2]
    assert counts == {
        "duplicate exchanges": 2,
        "empty turns": 1,
        "conversations with no assistant turn": 2,
        "turns longer than 1000 characters (not used as targets)": 1,
    }


def test_labels_mask_everything_but_the_assistant_tokens():
    from dlkit_recipes.nlp_chat.model import ChatFormat, scratch_tokenizer

    texts = [t for c in CONVERSATIONS for _, t in c] * 5
    tokenizer = scratch_tokenizer(texts, 300)
    fmt = ChatFormat(tokenizer, "markers", max_length=128, max_response=64)
    context, response = EXPECTED[1]
    input_ids, labels, prompt = fmt.encode(context, response)
    assert input_ids[: len(prompt)] == prompt and len(input_ids) == len(labels)
    assert all(label == -100 for label in labels[: len(prompt)])  # system, user, earlier assistant turns
    target = labels[len(prompt) :]
    assert target == input_ids[len(prompt) :] and -100 not in target
    assert target[-1] == tokenizer.eos_token_id  # the model learns to end its turn
    assert tokenizer.decode(target, skip_special_tokens=True).strip() == response
    assert tokenizer.convert_ids_to_tokens(prompt[-1]) == "<|assistant|>"


def test_the_retrieved_response_is_read_before_the_reply_and_never_a_target():
    from dlkit_recipes.nlp_chat.model import ChatFormat, scratch_tokenizer

    tokenizer = scratch_tokenizer([t for c in CONVERSATIONS for _, t in c] * 5, 300)
    fmt = ChatFormat(tokenizer, "markers", max_length=128, max_response=64)
    context, response = EXPECTED[1]
    plain_ids, plain_labels, plain_prompt = fmt.encode(context, response)
    input_ids, labels, prompt = fmt.encode(context, response, hint="From 10am to 4pm.")
    assert tokenizer.decode(prompt).endswith("<|retrieved|> From 10am to 4pm.</s><|assistant|>")
    assert prompt[: len(plain_prompt) - 1] == plain_prompt[:-1]  # the turns, then the hint
    assert labels == [-100] * len(prompt) + plain_labels[len(plain_prompt) :]  # same target, hint masked


def test_training_retrieves_from_other_conversations_inference_from_all(tmp_path):
    """Retrieve and refine: a training exchange is given the nearest exchange of ANOTHER conversation (its
    own answer would teach the model to copy), a new context the nearest of all."""
    from dlkit_recipes.nlp_chat.baselines import Retriever, fit_retrieval
    from dlkit_recipes.nlp_chat.data import read_examples

    path = _jsonl(
        tmp_path / "c.jsonl",
        [[("user", "Do you deliver to York?"), ("assistant", "Yes, we deliver to York.")],
         [("user", "Do you deliver to Leeds?"), ("assistant", "Yes, we deliver to Leeds."),
          ("user", "Do you deliver to Leeds and York?"), ("assistant", "Yes, to both.")]],
    )  # fmt: skip
    examples = read_examples(path, DATA)[0]
    retrieve = Retriever(fit_retrieval(examples, []))
    york, leeds = "Yes, we deliver to York.", "Yes, we deliver to Leeds."
    assert retrieve.for_training(examples, 1) == [[leeds], [york], [york]]
    assert retrieve.for_training(examples, 2)[0] == [leeds, "Yes, to both."]  # nearest first
    assert retrieve([[("user", "Do you deliver to Leeds and York?")]]) == ["Yes, to both."]


def test_bad_inputs_exit_2_naming_the_file_and_line(cli, tmp_path):
    def train(data: Path):
        return cli("train", "nlp-chat", "--data", data, "--out", tmp_path / "run", *TINY)

    unanswered = tmp_path / "unanswered.jsonl"
    unanswered.write_text(json.dumps({"messages": [{"role": "user", "content": "Hello?"}]}) + "\n")
    expect_user_error(train(unanswered), "unanswered.jsonl' line 1", "no assistant turn")

    bad_role = tmp_path / "roles.jsonl"
    bad_role.write_text(
        json.dumps(
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
        )
        + "\n"
        + json.dumps({"messages": [{"role": "human", "content": "Hi"}, {"role": "bot", "content": "Hello"}]})
        + "\n"
    )
    expect_user_error(train(bad_role), "roles.jsonl' line 2", "role 'human'")

    empty = tmp_path / "empty.yaml"
    empty.write_text("\n")
    expect_user_error(train(empty), "empty.yaml' is empty")

    not_json = tmp_path / "broken.jsonl"
    not_json.write_text(bad_role.read_text().splitlines()[0] + "\n{oops\n")
    expect_user_error(train(not_json), "broken.jsonl' line 2", "not valid JSON")
    assert not (tmp_path / "run").exists()


# --- a tiny trained run ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A run trained for a few steps on a small generated shop-assistant set (trained once per module)."""
    from dlkit.cli import main

    folder = tmp_path_factory.mktemp("chat")
    load_sample_generator("nlp_chat").generate(folder / "data", seed=1, train=60)
    out = folder / "run"
    argv = sys.argv
    sys.argv = [
        "dlkit",
        "train",
        "nlp-chat",
        "--data",
        str(folder / "data"),
        "--out",
        str(out),
        "--json",
        *TINY,
    ]
    try:
        main()
    except SystemExit as exc:
        assert not exc.code, exc.code
    finally:
        sys.argv = argv
    return out


def test_eval_scores_both_baselines_with_perplexity_and_examples(run):
    result = json.loads((run / "eval.json").read_text())
    assert set(result["baselines"]) == {"retrieval", "most_frequent"}
    assert set(result["metrics"]) >= {"chrf", "bleu", "perplexity", "distinct_1", "distinct_2", "degenerate"}
    unigram = result["baselines"]["most_frequent"]["perplexity"]
    assert 1 < result["metrics"]["perplexity"] < float("inf") and 1 < unigram < float("inf")
    assert result["baselines"]["retrieval"]["chrf"] > result["baselines"]["most_frequent"]["chrf"]
    example = result["details"]["examples"][0]
    assert set(example) == {"context", "reference", "model", "retrieval"} and example["context"]


def test_predict_answers_each_prompt_and_conversation(cli, run, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Hello\n\nWhen are you open?\n")
    conversation = _jsonl(tmp_path / "conv.jsonl", [CONVERSATIONS[1][:2]])
    res = cli("predict", run, prompts, conversation, "device=cpu")
    assert res.code == 0, res.err
    records = [json.loads(line) for line in res.out.splitlines()]
    assert [r["prompt"] for r in records] == ["Hello", "When are you open?", "Do you deliver to York?"]
    assert all(isinstance(r["response"], str) for r in records)


def _dlkit() -> list[str]:
    return [sys.executable, "-c", "from dlkit.cli import main; main()"]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "CI": "1"}


def test_chat_reads_turns_from_a_pipe_keeps_history_and_resets(cli, run, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("Hello\n\nWhere is my order 12345?\n/reset\nThanks!\n"))
    res = cli("chat", run, "device=cpu", "generate.strategy=sample", "--json")
    assert res.code == 0, res.err
    replies = [json.loads(line) for line in res.out.splitlines()]
    assert [r["prompt"] for r in replies] == ["Hello", "Where is my order 12345?", "Thanks!"]
    assert all(isinstance(r["response"], str) for r in replies)


def test_echo_hi_piped_into_dlkit_chat_answers_once_and_exits_0(run, tmp_path):
    once = subprocess.run(
        [*_dlkit(), "chat", str(run)],
        input="hi\n",
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
        cwd=tmp_path,
    )
    assert once.returncode == 0, once.stderr
    assert len(once.stdout.splitlines()) == 1 and once.stdout.strip()  # one answer for one line
    assert list(tmp_path.iterdir()) == []  # nothing written into the working directory


def _read_until(fd: int, marker: bytes, seen: bytearray, timeout: float = 240) -> None:
    end = time.monotonic() + timeout
    while marker not in seen:
        assert time.monotonic() < end, seen.decode(errors="replace")[-2000:]
        if select.select([fd], [], [], 1)[0]:
            try:
                seen += os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break


def test_chat_in_a_terminal_prompts_answers_resets_and_exits(run):
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [*_dlkit(), "chat", str(run), "device=cpu"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=_env(),
    )
    os.close(follower)
    seen = bytearray()
    try:
        _read_until(leader, b"you", seen)
        assert b"/reset" in seen and b"/exit" in seen  # the banner says how to leave
        os.write(leader, b"Hello\n")
        _read_until(leader, b"bot", seen)
        os.write(leader, b"/reset\n")
        _read_until(leader, b"new conversation", seen)
        os.write(leader, b"/exit\n")
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)


def test_chat_refuses_a_run_of_another_recipe(cli, run, tmp_path):
    expect_user_error(cli("chat", tmp_path / "missing"), "missing")
    expect_user_error(cli("chat", run, "model.layers=4"), "model.layers", "cannot be changed")
