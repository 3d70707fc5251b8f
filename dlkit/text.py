"""Shared text stages for the NLP recipes: cleaning, and subword tokenizers trained on the data.

Training a tokenizer on the user's own texts (instead of downloading one) is what makes the default
NLP models work fully offline. The tokenizer is returned as a transformers `PreTrainedTokenizerFast`,
so it saves and loads in Hugging Face format beside the model, and its JSON string can live in a run's
`preprocess/state.json`.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable

_TAG = re.compile(r"<[^>]{0,200}>")
_SPACE = re.compile(r"\s+")

SPECIAL = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
    "bos_token": "<s>",
    "eos_token": "</s>",
}


def clean_text(text: str) -> str:
    """Unicode NFKC, HTML tags and entities removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", str(text))
    text = html.unescape(_TAG.sub(" ", text))
    return _SPACE.sub(" ", text).strip()


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 8000,
    kind: str = "wordpiece",
    lowercase: bool = True,
    min_frequency: int = 2,
):
    """A WordPiece (BERT-style) or byte-level BPE tokenizer trained on `texts`, as PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = list(dict.fromkeys(SPECIAL.values()))
    if kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token=SPECIAL["unk_token"]))
        norm = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
        tok.normalizer = normalizers.Sequence(norm)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials, show_progress=False
        )
    elif kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token=SPECIAL["unk_token"]))
        tok.normalizer = normalizers.Sequence(
            [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
        )
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
    tok.train_from_iterator(list(texts), trainer=trainer)
    cls_id, sep_id = tok.token_to_id(SPECIAL["cls_token"]), tok.token_to_id(SPECIAL["sep_token"])
    tok.post_processor = processors.TemplateProcessing(
        single=f"{SPECIAL['cls_token']} $A {SPECIAL['sep_token']}",
        pair=f"{SPECIAL['cls_token']} $A {SPECIAL['sep_token']} $B {SPECIAL['sep_token']}",
        special_tokens=[(SPECIAL["cls_token"], cls_id), (SPECIAL["sep_token"], sep_id)],
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL)


def tokenizer_from_json(text: str):
    """Rebuild a tokenizer saved with `tokenizer_to_json` (e.g. from a run's state.json)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(text), **SPECIAL)


def tokenizer_to_json(tokenizer) -> str:
    return tokenizer.backend_tokenizer.to_str()
