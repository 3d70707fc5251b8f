"""Hugging Face glue shared by the NLP recipes (nlp-sentiment, nlp-translation, nlp-chat).

- Tokenizers trained on the user's own texts (WordPiece or byte-level BPE), which is what makes the
  default NLP models work fully offline; returned as transformers fast tokenizers, so they save and
  load in Hugging Face format beside the model.
- Tokenizers kept in a run's `state.json`: a trained one as its JSON, a checkpoint's as the files
  `save_pretrained` writes (base64 for binary ones), so evaluate and predict never need the original
  folder or the hub.
- Local or cached hub checkpoints: where a model name points, one error naming what is wrong with it,
  loading pretrained weights quietly.
- Dynamic padding (`pad_collate`; `pad_sequences` left-pads prompts for generation) and length ordering
  of evaluation and prediction sets.
- Saving the trained model and its tokenizer with `save_pretrained` (the run's `model/` folder).
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from dlkit.errors import UserError

SPECIAL = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
    "bos_token": "<s>",
    "eos_token": "</s>",
}


# --- the hub and local checkpoints -------------------------------------------------------------
def offline() -> bool:
    """HF_HUB_OFFLINE is set: only local folders and models already in the cache load."""
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def quiet() -> None:
    """dlkit shows its own progress; transformers' loading and saving bars would only clutter it."""
    from transformers.utils import logging

    logging.disable_progress_bar()


def source(name: str, key: str = "model.name", need_config: bool = True, builtin: str = "") -> str:
    """A local folder as an absolute path (so '~' and relative paths work), anything else as a hub name.

    With `need_config` a local path must be a folder holding config.json (a model, not a tokenizer);
    `builtin` names the recipe's own models for the hint ("bert-tiny or rnn").
    """
    path = Path(name).expanduser()
    if not path.exists():
        return name
    if need_config and (not path.is_dir() or not (path / "config.json").is_file()):
        also = f", or {key}={builtin} to train from scratch" if builtin else ""
        raise UserError(
            f"{key} '{name}' is not a transformers checkpoint (no config.json in it)",
            f"give a folder saved with save_pretrained (config.json, weights, tokenizer){also}",
        )
    return str(path.resolve())


def load_error(name: str, exc: Exception, key: str = "model.name", builtin: str = "") -> UserError:
    """The error for a checkpoint or tokenizer that does not load: a broken folder, or an unknown hub name."""
    text = str(exc).strip()
    reason = text.splitlines()[0][:200] if text else type(exc).__name__
    if Path(name).expanduser().exists():
        return UserError(
            f"{key} '{name}' cannot be loaded as a transformers checkpoint: {reason}",
            "the folder needs the files save_pretrained writes (config.json, model weights, tokenizer files)",
        )
    why = " (HF_HUB_OFFLINE is set, so only cached models load)" if offline() else ""
    choices = f"{builtin}, " if builtin else ""
    return UserError(
        f"{key} '{name}' is not {choices}a local checkpoint folder or a loadable hub model{why}: {reason}",
        "check the spelling, or download the model once and give its local folder",
    )


def load_config(name: str, key: str = "model.name", builtin: str = "", **changes):
    """The AutoConfig of a local or cached hub checkpoint (with `changes` applied, e.g. our labels)."""
    from transformers import AutoConfig

    where = source(name, key, builtin=builtin)
    try:
        return AutoConfig.from_pretrained(where, local_files_only=offline(), **changes)
    except (OSError, ValueError, KeyError) as exc:
        raise load_error(name, exc, key, builtin) from None


def load_tokenizer(name: str, key: str = "model.name", builtin: str = ""):
    """The AutoTokenizer of a local folder (model or tokenizer alone) or a cached hub name."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source(name, key, need_config=False), local_files_only=offline())
    except (OSError, ValueError, KeyError) as exc:
        raise load_error(name, exc, key, builtin) from None


def from_pretrained(auto_class, where: str, **kwargs):
    """Pretrained weights of a checkpoint, without transformers' load report (it only says that a new
    head is new, as intended) or progress bars."""
    from transformers.utils import logging

    quiet()
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        return auto_class.from_pretrained(where, local_files_only=offline(), **kwargs)
    except Exception as exc:  # a folder with config.json but truncated or mismatched weights
        raise UserError(
            f"the checkpoint '{where}' cannot be loaded ({type(exc).__name__}: {str(exc)[:300]})",
            "check that its weight files are complete and match its config.json",
        ) from None
    finally:
        logging.set_verbosity(verbosity)


def from_config(auto_class, stored: dict):
    """A randomly initialised model from a config stored with `config.to_dict()` (weights come later)."""
    from transformers import AutoConfig

    stored = dict(stored)
    config = AutoConfig.for_model(stored.pop("model_type"), **stored)
    return auto_class.from_config(config)


# --- tokenizers ----------------------------------------------------------------------------------
def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 8000,
    kind: str = "wordpiece",
    lowercase: bool = True,
    min_frequency: int = 2,
):
    """A WordPiece (BERT-style) or byte-level BPE tokenizer trained on `texts`, as a fast tokenizer
    whose texts come out as `[CLS] text [SEP]`. The same texts give the same tokenizer, run to run.

    The trainer breaks ties between equally frequent merges by token id. A byte-level BPE alphabet has
    fixed ids; WordPiece's word-inner pieces ("##e") would get theirs in the order of the trainer's
    word table, a hash map seeded at random per process (threads play no part: one thread varies too),
    so one corpus gave different vocabularies. Those pieces are given fixed ids first (`_inner_pieces`).
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = list(dict.fromkeys(SPECIAL.values()))
    norm = normalizers.Sequence([normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else []))
    texts = list(texts)
    if kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token=SPECIAL["unk_token"]))
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        inner = _inner_pieces(texts, norm, tok.pre_tokenizer)
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=specials + inner,
            show_progress=False,
        )
    elif kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token=SPECIAL["unk_token"]))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
    else:
        raise ValueError(f"unknown tokenizer kind {kind!r}")
    tok.normalizer = norm
    tok.train_from_iterator(texts, trainer=trainer)
    if kind == "wordpiece":  # the inner pieces were special only to fix their ids: plain vocabulary again
        trained, tok = tok, Tokenizer(tok.model)
        tok.normalizer, tok.pre_tokenizer, tok.decoder = norm, trained.pre_tokenizer, trained.decoder
        tok.add_special_tokens(specials)
    cls, sep = SPECIAL["cls_token"], SPECIAL["sep_token"]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}",
        pair=f"{cls} $A {sep} $B {sep}",
        special_tokens=[(cls, tok.token_to_id(cls)), (sep, tok.token_to_id(sep))],
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL)


def _inner_pieces(texts: list[str], normalizer, pre_tokenizer, prefix: str = "##") -> list[str]:
    """Every word-inner piece the WordPiece trainer starts from ("##" + each character found after a
    word's first), sorted: passed first, as special tokens, their ids no longer depend on the trainer's
    hash order. The distinct words come from a word-level pass of the same normalizer and pre-tokenizer
    (in Rust: a third of the WordPiece training time, where a Python loop over the texts took half)."""
    from tokenizers import Tokenizer, models, trainers

    words = Tokenizer(models.WordLevel(unk_token=SPECIAL["unk_token"]))
    words.normalizer, words.pre_tokenizer = normalizer, pre_tokenizer
    every = trainers.WordLevelTrainer(vocab_size=2**31 - 1, min_frequency=0, show_progress=False)
    words.train_from_iterator(texts, trainer=every)
    return [prefix + c for c in sorted({c for word in words.get_vocab() for c in word[1:]})]


def tokenizer_state(tokenizer, trained: bool) -> dict:
    """A tokenizer as JSON-able state: {"json": ...} for one dlkit trained, else {"files": ...} holding
    every file `save_pretrained` writes (its class, special tokens and language settings included)."""
    if trained:
        return {"json": tokenizer.backend_tokenizer.to_str()}
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        files = {}
        for path in sorted(Path(tmp).iterdir()):
            data = path.read_bytes()
            try:
                files[path.name] = {"text": data.decode("utf-8")}
            except UnicodeDecodeError:  # e.g. a SentencePiece model
                files[path.name] = {"base64": base64.b64encode(data).decode("ascii")}
    return {"files": files}


def tokenizer_from_state(stored: dict):
    """The tokenizer `tokenizer_state` stored, rebuilt without the original folder or the hub."""
    if "json" in stored:
        from tokenizers import Tokenizer
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(stored["json"]), **SPECIAL)
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        for name, content in stored["files"].items():
            if not name or Path(name).name != name or name in (".", ".."):  # never write outside tmp
                raise UserError(
                    f"the run's state names a tokenizer file {name!r} that is not a plain file name",
                    "the run's preprocess/state.json was altered; train the run again",
                )
            text = content.get("text")
            data = text.encode("utf-8") if text is not None else base64.b64decode(content["base64"])
            (Path(tmp) / name).write_bytes(data)
        return AutoTokenizer.from_pretrained(tmp)


def encode(tokenizer, texts: list[str], max_length: int) -> tuple[list[list[int]], int]:
    """Token ids (with the model's special tokens, cut at `max_length`) and how many texts were cut.

    Needs a fast tokenizer (the trained ones are; checkpoints are checked when fitted)."""
    if not texts:
        return [], 0
    batch = tokenizer(texts, truncation=True, max_length=max_length)
    return batch["input_ids"], sum(bool(e.overflowing) for e in batch.encodings)


def save_pretrained(model, tokenizer, folder: Path, max_length: int | None = None) -> None:
    """The model (a transformers one; None to skip it) and tokenizer in Hugging Face format in `folder`."""
    quiet()
    folder.mkdir(parents=True, exist_ok=True)
    if max_length is not None:
        tokenizer.model_max_length = max_length
    tokenizer.save_pretrained(folder)
    if model is not None:
        model.save_pretrained(folder)


# --- batches ------------------------------------------------------------------------------------
def length_order(lengths: Sequence[int], block: int = 0) -> list[int]:
    """Indices sorted by length (stable), so that batches hold similar lengths and dynamic padding
    wastes little. For evaluation and prediction, where the order does not matter.

    With `block` > 0 only each run of `block` consecutive items is sorted: prediction, which writes its
    records chunk by chunk, then still writes them in input order (a chunk sorts its own records back).
    """
    n = len(lengths)
    step = block if block > 0 else max(1, n)
    return [
        i
        for start in range(0, n, step)
        for i in sorted(range(start, min(n, start + step)), key=lambda i: lengths[i])
    ]


def predict_block(cfg: dict) -> int:
    """How many inputs `dlkit predict` runs per chunk (the core's own figure)."""
    from dlkit.engine.inference import chunk_batches

    return cfg["data"]["batch_size"] * chunk_batches(cfg)


def pad_collate(items: list[dict], pad_values: dict[str, int], masks: dict[str, str] | None = None) -> dict:
    """Batch dataset items holding token-id lists, padding each list key to the batch's longest.

    `pad_values` names the keys to pad and the value to pad with (the tokenizer's pad id, or -100
    for labels the loss should ignore); `masks` maps a padded key to the name of the 0/1 mask
    built for it, e.g. {"input_ids": "attention_mask"}. Other tensor values are stacked, numbers
    become tensors, and everything else (ids, texts) stays a list.
    """
    masks = {"input_ids": "attention_mask"} if masks is None else masks
    batch: dict = {}
    for key in items[0]:
        values = [item[key] for item in items]
        if key in pad_values:
            longest = max(len(v) for v in values)
            padded = torch.full((len(values), longest), pad_values[key], dtype=torch.long)
            mask = torch.zeros((len(values), longest), dtype=torch.long)
            for row, seq in enumerate(values):
                padded[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
                mask[row, : len(seq)] = 1
            batch[key] = padded
            if key in masks:
                batch[masks[key]] = mask
        elif isinstance(values[0], torch.Tensor):
            batch[key] = torch.stack(values)
        elif isinstance(values[0], (int, float)) and not isinstance(values[0], bool):
            batch[key] = torch.tensor(values)
        else:
            batch[key] = values
    return batch


def pad_sequences(
    sequences: Sequence[Sequence[int]], pad_id: int, left: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-id lists as one padded tensor and its 0/1 attention mask. `left` pads in front, as batched
    generation with a decoder-only model needs: every prompt then ends where the new tokens begin."""
    longest = max((len(s) for s in sequences), default=0)
    ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if not len(seq):
            continue
        cols = slice(longest - len(seq), longest) if left else slice(0, len(seq))
        ids[row, cols] = torch.as_tensor(seq, dtype=torch.long)
        mask[row, cols] = 1
    return ids, mask
