"""Conversation files -> conversations (lists of role/text turns), each knowing its file and line.

Three formats, because those are the ones people have:
- JSONL, one conversation a line: {"messages": [{"role": "user", "content": "..."}, ...]} (the chat format
  of fine-tuning APIs; `content` may also be a list of {"type": "text", "text": ...} parts), with an
  optional "split" key;
- CSV/TSV with a context and a response column: one exchange a row (the context may hold several
  earlier turns, separated by `data.turn_separator`), with an optional `split` column;
- YAML or JSON: a list of conversations, each a list of turns that alternate user / assistant (plain
  strings), or of {role, content} messages, or a {"messages": [...]} mapping.

Every error names the file and the line (row for tables) and exits with code 2: a role other than
user, assistant or system, a line that is not JSON, an empty file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dlkit.data.splits import ALIAS_TEXT, SPLITS, split_files, split_name
from dlkit.data.textdata import read_text_table
from dlkit.errors import UserError

ROLES = ("system", "user", "assistant")
SUFFIXES = (".jsonl", ".json", ".yaml", ".yml", ".csv", ".tsv")
FORMAT_HINT = (
    'JSONL lines {"messages": [{"role": "user", "content": ...}, ...]}, a CSV/TSV with context and '
    "response columns, or a YAML/JSON list of conversations"
)


@dataclass
class Conversation:
    """Turns as (role, text), where it was read ("'chats.jsonl' line 7"), its split if the data names one."""

    turns: list[tuple[str, str]]
    where: str
    split: str | None = None


def find_files(path: Path) -> list[tuple[str | None, Path]]:
    """(split or None, file): one file, a folder of split files (train.jsonl, dev.jsonl, test.jsonl...)
    in train, val, test order, or a folder holding one conversation file."""
    if path.is_file():
        return [(None, path)]
    files = split_files(path, SUFFIXES)
    if files:
        return sorted(files.items(), key=lambda item: SPLITS.index(item[0]))
    found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    if len(found) == 1:
        return [(None, found[0])]
    names = ", ".join(p.name for p in found) or "none"
    raise UserError(
        f"data folder '{path}' should hold one conversation file or split files (found: {names})",
        f"pass --data PATH to {FORMAT_HINT}; split file names: {ALIAS_TEXT}",
    )


def read_conversations(path: Path, d: dict) -> list[Conversation]:
    """Every conversation of a data path, in file order (train files first)."""
    out: list[Conversation] = []
    for split, file in find_files(path):
        conversations = read_file(file, d)
        for c in conversations:
            c.split = split or c.split
        out += conversations
    return out


def read_file(file: Path, d: dict) -> list[Conversation]:
    """One file's conversations; an empty file is refused."""
    suffix = file.suffix.lower()
    if suffix not in SUFFIXES:
        raise UserError(f"'{file}' is not a conversation file dlkit reads", f"give {FORMAT_HINT}")
    if suffix in (".csv", ".tsv"):
        return _read_table(file, d)
    try:
        text = file.read_text(encoding=d["encoding"])
    except UnicodeDecodeError as exc:
        raise UserError(
            f"'{file}' is not valid {d['encoding']} text ({exc.reason})",
            "pass its encoding, e.g. data.encoding=latin-1",
        ) from None
    if not text.strip():
        raise UserError(f"'{file}' is empty (line 1): it holds no conversations", f"give {FORMAT_HINT}")
    if suffix == ".jsonl" or (suffix == ".json" and not text.lstrip().startswith("[")):
        return _read_jsonl(file, text)
    items = _json_items(file, text) if suffix == ".json" else _yaml_items(file, text)
    return [_conversation(item, f"'{file}' line {line}") for line, item in items]


# --- formats ---------------------------------------------------------------------------------------
def _read_jsonl(file: Path, text: str) -> list[Conversation]:
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(
                f"'{file}' line {n} is not valid JSON ({exc.msg}, column {exc.colno})",
                'each line holds one conversation: {"messages": [{"role": "user", "content": "..."}, ...]}',
            ) from None
        out.append(_conversation(item, f"'{file}' line {n}"))
    return out


def _json_items(file: Path, text: str) -> list[tuple[int, object]]:
    """(line, item) for each element of a top-level JSON list, decoded one at a time so lines are known."""
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    items = []
    try:
        while True:
            while pos < len(text) and text[pos] in " \t\r\n,":
                pos += 1
            if pos >= len(text) or text[pos] == "]":
                break
            item, end = decoder.raw_decode(text, pos)
            items.append((text.count("\n", 0, pos) + 1, item))
            pos = end
    except json.JSONDecodeError as exc:
        raise UserError(
            f"'{file}' line {exc.lineno} is not valid JSON ({exc.msg})", f"give {FORMAT_HINT}"
        ) from None
    return items


def _yaml_items(file: Path, text: str) -> list[tuple[int, object]]:
    """(line, item) for each element of a top-level YAML list (line numbers from the parsed nodes)."""
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"'{file}'{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, list):
        raise UserError(f"'{file}' line 1: expected a list of conversations", f"give {FORMAT_HINT}")
    return [(node.start_mark.line + 1, item) for node, item in zip(root.value, data, strict=True)]


def _read_table(file: Path, d: dict) -> list[Conversation]:
    """One exchange a row: the context (earlier turns joined by `data.turn_separator`, the last one the
    user's) and the response; rows are numbered as in a spreadsheet (header = row 1)."""
    columns = [d["context_column"], d["response_column"]]
    frame = read_text_table(file, columns, d["encoding"])
    splits = frame["split"] if "split" in frame.columns else [None] * len(frame)
    out = []
    for i, (context, response, split) in enumerate(zip(*(frame[c] for c in columns), splits, strict=True)):
        where = f"'{file}' row {i + 2}"
        parts = context.split(d["turn_separator"]) if d["turn_separator"] else [context]
        roles = ["user" if (len(parts) - k) % 2 else "assistant" for k in range(len(parts))]
        turns = [*zip(roles, parts, strict=True), ("assistant", response)]
        out.append(Conversation(turns, where, split_name(split, where) if isinstance(split, str) else None))
    return out


# --- one conversation --------------------------------------------------------------------------------
def _conversation(item: object, where: str) -> Conversation:
    """A conversation from a {"messages": [...]} mapping, a list of messages, or a list of plain strings
    alternating user / assistant."""
    split = None
    if isinstance(item, dict):
        if "messages" not in item:
            raise UserError(
                f"{where}: no 'messages' key (keys: {', '.join(map(str, item))})", f"give {FORMAT_HINT}"
            )
        split = split_name(item.get("split"), where)
        item = item["messages"]
    if not isinstance(item, list):
        raise UserError(f"{where}: a conversation must be a list of messages", f"give {FORMAT_HINT}")
    turns = []
    for k, message in enumerate(item):
        if isinstance(message, str):
            turns.append(("user" if k % 2 == 0 else "assistant", message))
            continue
        if not isinstance(message, dict) or "role" not in message:
            raise UserError(
                f"{where}: message {k + 1} is not a {{role, content}} mapping or a string",
                f"give {FORMAT_HINT}",
            )
        role = str(message["role"]).strip().lower()
        if role not in ROLES:
            raise UserError(
                f"{where}: message {k + 1} has role '{message['role']}', not user, assistant or system",
                "rename the role (e.g. human -> user, bot -> assistant)",
            )
        turns.append((role, _content(message.get("content"))))
    return Conversation(turns, where, split)


def _content(value: object) -> str:
    """Message content as text: a string, or the text parts of a list of {"type": "text", "text": ...}."""
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(
            str(p.get("text", "")) for p in value if isinstance(p, dict) and p.get("type") == "text"
        )
    return str(value)
