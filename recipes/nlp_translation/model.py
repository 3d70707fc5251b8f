"""The seq2seq model: a small BART with a BPE tokenizer fitted on the data, or a checkpoint; decoding."""

from __future__ import annotations

import math

import torch
from dlkit_recipes.nlp_translation.config import SCRATCH

from dlkit import hf
from dlkit.errors import UserError


def scratch_tokenizer(texts: list[str], vocab_size: int):
    """Byte-level BPE shared by both languages, case kept (BLEU is case-sensitive), `text [SEP]` templates."""
    from tokenizers import processors

    tokenizer = hf.train_tokenizer(texts, vocab_size, kind="bpe", lowercase=False)
    eos = hf.SPECIAL["sep_token"]
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"$A {eos}", pair=f"$A {eos} $B {eos}", special_tokens=[(eos, tokenizer.sep_token_id)]
    )
    return tokenizer


def _scratch_config(cfg: dict, tokenizer):
    from transformers import BartConfig

    m = cfg["model"]
    return BartConfig(
        vocab_size=len(tokenizer),
        d_model=m["hidden"],
        encoder_layers=m["layers"],
        decoder_layers=m["layers"],
        encoder_attention_heads=m["heads"],
        decoder_attention_heads=m["heads"],
        encoder_ffn_dim=m["ffn"],
        decoder_ffn_dim=m["ffn"],
        max_position_embeddings=cfg["data"]["max_length"],
        dropout=m["dropout"],
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        decoder_start_token_id=tokenizer.cls_token_id,
        forced_eos_token_id=None,
    )


def _checkpoint_config(name: str):
    config = hf.load_config(name, builtin=SCRATCH)
    if not config.is_encoder_decoder:
        raise UserError(
            f"model.name '{name}' is a {config.model_type} model, not an encoder-decoder",
            "translation needs a seq2seq checkpoint (Marian, T5, BART, mBART, NLLB...)",
        )
    return config


def _generation_config(name: str, config):
    """The checkpoint's generation defaults (e.g. Marian bans generating padding), else the config's."""
    from transformers import GenerationConfig

    if name != SCRATCH:
        try:
            return GenerationConfig.from_pretrained(hf.source(name), local_files_only=hf.offline())
        except OSError:
            pass
    return GenerationConfig.from_model_config(config)


def _check_fit(cfg: dict, config, tokenizer) -> None:
    """Refuse a tokenizer whose ids the model cannot embed, before any run directory is written."""
    m = cfg["model"]
    model_vocab = getattr(config, "vocab_size", None)
    if model_vocab is not None and len(tokenizer) > model_vocab:
        raise UserError(
            f"the tokenizer has {len(tokenizer)} tokens but model '{m['name']}' embeds only {model_vocab} "
            "(vocab_size): its ids would index past the embedding table",
            "use the tokenizer saved with that model (model.tokenizer_name='' or its folder)",
        )
    if tokenizer.pad_token_id is None:
        raise UserError(
            f"tokenizer '{m['tokenizer_name'] or m['name']}' has no padding token",
            "use a seq2seq tokenizer that defines pad_token",
        )
    if config.decoder_start_token_id is None and config.bos_token_id is None:
        raise UserError(
            f"model '{m['name']}' defines no decoder_start_token_id",
            "set decoder_start_token_id in its config.json",
        )


def set_languages(tokenizer, m: dict):
    """Source/target language codes on tokenizers that take them (mBART, NLLB, M2M100)."""
    for attr, code in (("src_lang", m["src_lang"]), ("tgt_lang", m["tgt_lang"])):
        if code and hasattr(tokenizer, attr):
            setattr(tokenizer, attr, code)
    return tokenizer


def fit(cfg: dict, train: list[tuple[str, str]]) -> tuple[dict, object]:
    """Fit on the training pairs: the tokenizer (or the checkpoint's), model and generation configs, and the
    default longest translation. Returns the state's part and the tokenizer."""
    m = cfg["model"]
    if m["name"] == SCRATCH:
        tokenizer = scratch_tokenizer([t for pair in train for t in pair], m["vocab_size"])
        config = _scratch_config(cfg, tokenizer)
    else:
        name = m["tokenizer_name"] or m["name"]
        tokenizer = set_languages(
            hf.load_tokenizer(name, "model.tokenizer_name" if m["tokenizer_name"] else "model.name"), m
        )
        config = _checkpoint_config(m["name"])
    _check_fit(cfg, config, tokenizer)
    targets = [len(ids) for ids in tokenizer(text_target=[t for _, t in train])["input_ids"]]
    sources = [len(ids) for ids in tokenizer([s for s, _ in train])["input_ids"]]
    ratios = sorted(t / s for s, t in zip(sources, targets, strict=True))
    longest = max(targets)
    state = {
        "tokenizer": hf.tokenizer_state(tokenizer, trained=m["name"] == SCRATCH),
        "model": {
            "source": m["name"] if m["name"] == SCRATCH else hf.source(m["name"]),
            "config": config.to_dict(),
            "generation": _generation_config(m["name"], config).to_dict(),
        },
        "max_new_tokens": min(cfg["data"]["max_length"] - 1, math.ceil(1.5 * longest) + 5),
        "length_ratio": round(ratios[int(0.98 * (len(ratios) - 1))], 3),
    }
    return state, tokenizer


def build(state: dict, init_from: str | None) -> torch.nn.Module:
    """The model from the stored config; a checkpoint's pretrained weights only when `init_from` names it."""
    from transformers import AutoModelForSeq2SeqLM, GenerationConfig

    hf.quiet()
    if init_from is not None:
        model = hf.from_pretrained(AutoModelForSeq2SeqLM, init_from, dtype=torch.float32)
    else:
        model = hf.from_config(AutoModelForSeq2SeqLM, state["model"]["config"])
    model.generation_config = GenerationConfig.from_dict(state["model"]["generation"])
    return model


def generation_kwargs(g: dict, m: dict, tokenizer, max_new_tokens: int, beams: int) -> dict:
    """`generate` arguments: beam width, longest translation, length penalty, forced target language."""
    kwargs = {"num_beams": beams, "do_sample": False, "max_new_tokens": g["max_new_tokens"] or max_new_tokens}
    if beams > 1:
        kwargs.update(length_penalty=g["length_penalty"], early_stopping=True)
    target = m["tgt_lang"]
    if target:
        lang_id = (
            tokenizer.get_lang_id(target)
            if hasattr(tokenizer, "get_lang_id")
            else tokenizer.convert_tokens_to_ids(target)
        )
        if lang_id is not None and lang_id != tokenizer.unk_token_id:
            kwargs["forced_bos_token_id"] = lang_id
    return kwargs


def translate(
    model: torch.nn.Module, tokenizer, batch: dict, kwargs: dict, length_ratio: float | None = None
) -> list[str]:
    """Generated translations, decoded; empty sources come back empty without being translated.

    With `length_ratio` (the training pairs' 98th-percentile target/source token ratio), a translation
    stops at 1.5x its source's length times that ratio, and a batch at its longest sentence's limit:
    batches run in length order, so short sentences are no longer decoded to the corpus-wide limit by a
    model that has not yet learnt to stop (early epochs). Each sentence is cut at its own limit, so a
    translation never depends on the batch it was in.
    """
    from torch.nn.parallel import DistributedDataParallel

    if isinstance(model, DistributedDataParallel):  # generate is the wrapped module's
        model = model.module
    caps = None
    if length_ratio:
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        caps = [min(kwargs["max_new_tokens"], math.ceil(1.5 * length_ratio * n) + 5) for n in lengths]
        kwargs = {**kwargs, "max_new_tokens": max(caps)}
    out = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **kwargs)
    if caps is not None:  # the first position is the decoder's start token
        out = [row[: 1 + cap] for row, cap in zip(out, caps, strict=True)]
    texts = tokenizer.batch_decode(out, skip_special_tokens=True)
    return [text.strip() if source else "" for text, source in zip(texts, batch["source"], strict=True)]
