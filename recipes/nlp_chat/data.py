"""Conversations -> cleaned training examples (context turns -> assistant response), splits, datasets, and
the inputs of `dlkit predict` and `dlkit chat`.

Every assistant turn is one example: its target is the turn's text, its context the turns before it (the
last `data.max_turns` of them, after any system prompt, which is always kept). Cleaning drops and counts:
empty turns, over-long turns (not used as targets; kept, cut to length, as context), exact duplicate
exchanges (same context and response; files are read train first, so a test exchange seen in training
is dropped from test) and conversations with no assistant turn. Conversations, not exchanges, are split,
so no conversation has turns in two splits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dlkit_recipes.nlp_chat.reading import FORMAT_HINT, SUFFIXES, Conversation, read_conversations, read_file
from torch.utils.data import Dataset

from dlkit import hf
from dlkit.data.splits import assign_splits
from dlkit.data.textdata import clean_text
from dlkit.errors import UserError

Turn = tuple[str, str]


@dataclass
class Example:
    context: list[Turn]
    response: str
    conversation: int


@dataclass
class Cleaning:
    """How many of each problem cleaning found (and dropped)."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def summary(self) -> str:
        return ", ".join(f"{what}: {n}" for what, n in self.counts.items()) or "nothing found"


def window(turns: list[Turn], max_turns: int) -> list[Turn]:
    """The leading system turns and the last `max_turns` others (0 = all)."""
    system = []
    while len(system) < len(turns) and turns[len(system)][0] == "system":
        system.append(turns[len(system)])
    rest = turns[len(system) :]
    return system + (rest[-max_turns:] if max_turns else rest)


def make_examples(conversations: list[Conversation], d: dict) -> tuple[list[Example], Cleaning]:
    """One example per usable assistant turn, and what cleaning found."""
    cleaning, seen, examples = Cleaning(), set(), []
    long_label = f"turns longer than {d['max_chars']} characters (not used as targets)"
    for index, conversation in enumerate(conversations):
        turns = []
        for role, raw in conversation.turns:
            text = clean_text(raw)
            if text:
                turns.append((role, text))
            else:
                cleaning.add("empty turns")
        if not any(role == "assistant" for role, _ in turns):
            cleaning.add("conversations with no assistant turn")
            continue
        for j, (role, text) in enumerate(turns):
            if role != "assistant":
                continue
            if d["max_chars"] and len(text) > d["max_chars"]:
                cleaning.add(long_label)
                continue
            context = [
                (r, t[-d["max_chars"] :] if d["max_chars"] else t)
                for r, t in window(turns[:j], d["max_turns"])
            ]
            key = (tuple(context), text)
            if key in seen:
                cleaning.add("duplicate exchanges")
                continue
            seen.add(key)
            examples.append(Example(context, text, index))
    return examples, cleaning


def require_assistant_turns(conversations: list[Conversation]) -> None:
    """Refuse a data file in which no conversation has an assistant turn: there is nothing to learn from it
    (most often the roles are named differently). Names the file and line of the first conversation."""
    by_file: dict[str, list[Conversation]] = {}
    for c in conversations:
        by_file.setdefault(c.where.rsplit(" ", 2)[0], []).append(c)
    for group in by_file.values():
        if not any(role == "assistant" and clean_text(text) for c in group for role, text in c.turns):
            raise UserError(
                f"{group[0].where}: the conversation has no assistant turn, and no conversation in the file "
                "has one, so there is no response to learn",
                "each conversation needs at least one non-empty turn with role 'assistant'",
            )


def read_examples(path: Path, d: dict) -> tuple[list[Example], list[str | None], Cleaning, int]:
    """Cleaned examples of a data path, the given split of each conversation, the cleaning report and the
    number of conversations read."""
    conversations = read_conversations(path, d)
    require_assistant_turns(conversations)
    examples, cleaning = make_examples(conversations, d)
    if not examples:
        raise UserError(
            f"no usable exchanges in '{path}' after cleaning ({cleaning.summary()})",
            "check the conversations have non-empty assistant turns, or raise data.max_chars",
        )
    return examples, [c.split for c in conversations], cleaning, len(conversations)


def split_examples(examples: list[Example], given: list[str | None], cfg: dict) -> dict[str, list[int]]:
    """Example indices per split: conversations keep a split the data names, the rest are split at random
    (by conversation); validation is cut to `data.max_val_examples`, evenly spaced (it is generated at
    every check)."""
    d = cfg["data"]
    assigned = assign_splits(given, d["val_fraction"], d["test_fraction"], cfg["seed"])
    groups: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for i, example in enumerate(examples):
        groups[assigned[example.conversation]].append(i)
    cap = d["max_val_examples"]
    if cap and len(groups["val"]) > cap:
        stride = len(groups["val"]) / cap
        groups["val"] = [groups["val"][int(k * stride)] for k in range(cap)]
    return groups


# --- datasets ---------------------------------------------------------------------------------------
class ChatSet(Dataset):
    """Encoded examples as dicts {'input_ids', 'labels', 'prompt_ids', 'context', 'response', 'id'}.

    `labels` are -100 everywhere but on the response's tokens (the loss and perplexity count assistant
    tokens only); `prompt_ids` is the context alone, to generate from. Predict items have no response.
    """

    def __init__(self, items: list[dict], order: list[int] | None = None):
        self.items = items if order is None else [items[i] for i in order]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


def chat_set(fmt, examples: list[Example], ids: list[int], by_length: bool, hints: list | None) -> ChatSet:
    """A split's dataset; evaluation sets in prompt-length order so a batch pads (and generates) together.
    `hints`: per example, the retrieved responses (model.retrieve) it is seen with, one item each (in
    example order); None: one item per example, without."""
    items = []
    for example, i, found in zip(examples, ids, hints or [[None]] * len(examples), strict=True):
        for hint in found:
            input_ids, labels, prompt_ids = fmt.encode(example.context, example.response, hint)
            items.append(
                {
                    "input_ids": input_ids,
                    "labels": labels,
                    "prompt_ids": prompt_ids,
                    "context": example.context,
                    "response": example.response,
                    "id": i,
                }
            )
    order = hf.length_order([len(item["prompt_ids"]) for item in items]) if by_length else None
    return ChatSet(items, order)


def prompt_item(fmt, context: list[Turn], i: int, hint: str | None = None) -> dict:
    """An item to answer: the context (and the retrieved response) only (predict, chat)."""
    return {"prompt_ids": fmt.encode(context, None, hint)[2], "context": context, "id": i}


# --- predict inputs -----------------------------------------------------------------------------------
def contexts(raw: str, d: dict) -> list[list[Turn]]:
    """One predict argument -> contexts to answer: each line of a .txt file is a user turn on its own; each
    conversation of a JSONL/JSON/YAML file (or context of a CSV/TSV row) is answered as a whole; anything
    else is one user turn."""
    path = Path(raw).expanduser()
    if not path.is_file():
        if path.suffix.lower() in (*SUFFIXES, ".txt") and not any(c.isspace() for c in raw):
            raise UserError(
                f"input file '{raw}' does not exist", "to send text that looks like a file name, add a space"
            )
        return [[("user", clean_text(raw))]]
    if path.suffix.lower() == ".txt":
        try:
            lines = path.read_text(encoding=d["encoding"]).splitlines()
        except UnicodeDecodeError as exc:
            raise UserError(f"'{path}' is not valid {d['encoding']} text ({exc.reason})") from None
        return [[("user", clean_text(line))] for line in lines if line.strip()]
    if path.suffix.lower() not in SUFFIXES:
        raise UserError(
            f"input '{raw}' is not a file this recipe reads", f"give a .txt of prompts or {FORMAT_HINT}"
        )
    out = []
    for conversation in read_file(path, d):
        turns = [(role, clean_text(text)) for role, text in conversation.turns if clean_text(text)]
        if path.suffix.lower() in (".csv", ".tsv"):
            turns = turns[:-1]  # the response column is the reference, not context
        out.append(window(turns, d["max_turns"]))
    return out
