"""nlp-translation: source/target sentence pairs -> a sequence-to-sequence model, scored with sacreBLEU.

The default works fully offline: a byte-level BPE tokenizer is trained on both sides of the training
split and a small BART (encoder-decoder) is trained from scratch. Any `AutoModelForSeq2SeqLM`
checkpoint (Marian, T5, BART, mBART...) given by hub name or local directory fine-tunes through the
same path with its own tokenizer. Training uses teacher forcing: the labels (padding as -100) go to
the model, which shifts them right into decoder inputs.

Validation generates every epoch, greedily by default (`generate.val_beams`), because the monitored
BLEU only has to rank epochs; the final evaluation and `predict` use the full beam search. The run is
self-contained: tokenizer files and the model config live in the run's state, so evaluate and
predict never need the training data or the original checkpoint folder.
"""

from __future__ import annotations

import base64
import math
import os
import statistics
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import Dataset

from dlkit import console
from dlkit.config import opt
from dlkit.data.splits import random_split
from dlkit.data.tables import FORMATS
from dlkit.data.textdata import length_order, pad_collate, read_text_table
from dlkit.errors import UserError
from dlkit.recipe import Recipe, RecipeData
from dlkit.text import SPECIAL, clean_text, tokenizer_from_json, tokenizer_to_json, train_tokenizer

SCRATCH = "bart-scratch"
SCRATCH_LR, FINETUNE_LR = 1e-3, 5e-5
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "dev": "val",
               "test": "test"}
TABLE_SUFFIXES = {s for s in FORMATS if s != ".txt"}  # a .txt input to predict is one sentence per line
TEXT_FILE_SUFFIXES = TABLE_SUFFIXES | {".txt"}
BLEU_TOKENIZERS = ("13a", "intl", "zh", "char", "none")


# --- cleaning ------------------------------------------------------------------------------
@dataclass
class Cleaned:
    """Which pairs survived the filters, how many each filter removed, and what was only reported."""

    kept: list[int]
    removed: dict[str, int] = field(default_factory=dict)
    identical: int = 0
    median_ratio: float = 1.0

    def summary(self) -> str:
        return ", ".join(f"{reason}: {n}" for reason, n in self.removed.items()) or "nothing removed"


def _length_ratio(source: str, target: str) -> float:
    return (len(target) + 1) / (len(source) + 1)


def clean_pairs(pairs: list[tuple[str, str]], max_chars: int, max_ratio: float,
                median_ratio: float | None = None) -> Cleaned:
    """Parallel-text filters, in order: an empty side, exact duplicate pairs, over-long pairs, misalignment.

    The length-ratio filter compares each pair's target/source length ratio with the corpus median
    (fitted on the training run and reused later), so it suits any language pair, English->Chinese as
    well as English->French: a pair more than `max_ratio` times off the median is likely misaligned.
    """
    removed = {"empty side": 0, "exact duplicates": 0, f"longer than {max_chars} characters": 0}
    seen: set[tuple[str, str]] = set()
    candidates = []
    for i, pair in enumerate(pairs):
        if not pair[0] or not pair[1]:
            removed["empty side"] += 1
        elif pair in seen:
            removed["exact duplicates"] += 1
        elif max_chars and max(len(pair[0]), len(pair[1])) > max_chars:
            seen.add(pair)
            removed[f"longer than {max_chars} characters"] += 1
        else:
            seen.add(pair)
            candidates.append(i)
    ratios = {i: _length_ratio(*pairs[i]) for i in candidates}
    if median_ratio is None:
        median_ratio = statistics.median(ratios.values()) if ratios else 1.0
    kept = candidates
    if max_ratio:
        label = f"length ratio over {max_ratio:g}x the median ({median_ratio:.2f})"
        kept = [i for i in candidates if max(ratios[i] / median_ratio, median_ratio / ratios[i]) <= max_ratio]
        removed[label] = len(candidates) - len(kept)
    identical = sum(pairs[i][0] == pairs[i][1] for i in kept)
    return Cleaned(kept, {k: v for k, v in removed.items() if v}, identical, median_ratio)


# --- datasets ------------------------------------------------------------------------------
class PairSet(Dataset):
    """Tokenised sentence pairs as dicts {'input_ids', 'labels', 'source', 'target', 'id'}.

    Without targets (predict) items have no labels. Sources and targets stay as text so that
    evaluation scores the untouched references, not a detokenised copy of them. Evaluation and
    prediction sets are kept in source-length order, so a batch's sentences pad (and, in beam
    search, finish) together.
    """

    def __init__(self, sources: list[str], targets: list[str] | None, ids: list, encode,
                 by_length: bool = False):
        encoded = encode(sources, targets)
        order = length_order([len(t) for t in encoded["input_ids"]]) if by_length else range(len(sources))
        self.sources = [sources[i] for i in order]
        self.ids = [ids[i] for i in order]
        self.input_ids = [encoded["input_ids"][i] for i in order]
        self.targets = [targets[i] for i in order] if targets is not None else None
        self.labels = [encoded["labels"][i] for i in order] if targets is not None else None

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, i: int) -> dict:
        item = {"input_ids": self.input_ids[i], "source": self.sources[i], "id": self.ids[i]}
        if self.labels is not None:
            item["labels"] = self.labels[i]
            item["target"] = self.targets[i]
        return item


# --- metrics -------------------------------------------------------------------------------
class CorpusScore:
    """A corpus-level sacreBLEU metric (BLEU or chrF) that accumulates strings across batches.

    Corpus BLEU is not an average of sentence scores, so it cannot be a running mean: it keeps every
    hypothesis and reference and scores them together in `compute`.
    """

    def __init__(self, metric):
        self.metric = metric
        self.hypotheses: list[str] = []
        self.references: list[str] = []

    def update(self, preds: list[str], target: list[str]) -> None:
        self.hypotheses += list(preds)
        self.references += list(target)

    def compute(self) -> torch.Tensor:
        score = self.metric.corpus_score(self.hypotheses, [self.references]).score if self.hypotheses else 0.0
        return torch.tensor(score, dtype=torch.float64)

    def reset(self) -> None:
        self.hypotheses, self.references = [], []

    def to(self, device) -> CorpusScore:
        return self


def sacrebleu_metrics(bleu_tokenize: str) -> dict[str, CorpusScore]:
    from sacrebleu.metrics import BLEU, CHRF

    # force: the warning about tokenized references would repeat every epoch; load_data notes it once
    return {"bleu": CorpusScore(BLEU(tokenize=bleu_tokenize, force=True)), "chrf": CorpusScore(CHRF())}


def sacrebleu_signatures(bleu_tokenize: str) -> dict[str, str]:
    """What the scores mean (tokenizer, smoothing, version...), to report beside them; one reference each."""
    signatures = {}
    for name, score in sacrebleu_metrics(bleu_tokenize).items():
        score.metric.corpus_score(["x"], [["x"]])  # sacreBLEU knows the reference count only after scoring
        signatures[name] = score.metric.get_signature().format()
    return signatures


# --- tokenizer and model storage in state.json ------------------------------------------------
def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _where(name: str) -> str:
    """A local folder as an absolute path (so '~' and relative paths work), anything else as a hub name."""
    local = Path(name).expanduser()
    return str(local.resolve()) if local.exists() else name


def _quiet_transformers() -> None:
    """dlkit shows its own progress; transformers' loading and saving bars would only clutter it."""
    from transformers.utils import logging

    logging.disable_progress_bar()


def tokenizer_files(tokenizer) -> dict[str, dict[str, str]]:
    """Every file `save_pretrained` writes, as text (base64 for binary ones such as SentencePiece models)."""
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        files = {}
        for path in sorted(Path(tmp).iterdir()):
            data = path.read_bytes()
            try:
                files[path.name] = {"text": data.decode("utf-8")}
            except UnicodeDecodeError:
                files[path.name] = {"base64": base64.b64encode(data).decode("ascii")}
    return files


def tokenizer_from_files(files: dict[str, dict[str, str]]):
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        for name, content in files.items():
            text = content.get("text")
            (Path(tmp) / name).write_bytes(text.encode("utf-8") if text is not None
                                           else base64.b64decode(content["base64"]))
        return AutoTokenizer.from_pretrained(tmp)


def scratch_tokenizer(texts: list[str], vocab_size: int):
    """Byte-level BPE shared by both languages, case kept (BLEU is case-sensitive), `text </s>` templates."""
    from tokenizers import processors

    tokenizer = train_tokenizer(texts, vocab_size, kind="bpe", lowercase=False)
    eos = SPECIAL["sep_token"]
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"$A {eos}", pair=f"$A {eos} $B {eos}", special_tokens=[(eos, tokenizer.sep_token_id)])
    return tokenizer


class NlpTranslation(Recipe):
    name = "nlp-translation"
    task = "machine translation"
    description = "Translate sentences with a seq2seq transformer (small BART from scratch, or a checkpoint)."
    default_model = SCRATCH
    sample_data = "sample_data/nlp_translation/pairs.tsv"
    monitor = "bleu"
    monitor_mode = "max"

    @classmethod
    def config(cls) -> dict:
        return {
            "data": {
                "batch_size": 32,
                "source_column": opt("source", "column holding the sentence to translate"),
                "target_column": opt("target", "column holding its translation"),
                "encoding": opt("utf-8", "text encoding of the data files"),
                "max_chars": opt(400, "drop pairs with a side longer than this many characters (0 = off)"),
                "max_length_ratio": opt(3.0, "drop pairs whose target/source length ratio is this many times "
                                             "off the corpus median (likely misaligned; 0 = off)"),
                "max_length": opt(128, "tokens kept per sentence (longer ones are truncated)"),
                "max_val_pairs": opt(1000, "cap on validation pairs (translated every epoch); extra pairs of "
                                           "a random split join training (0 = no cap)"),
            },
            "model": {
                "name": opt(SCRATCH, f"'{SCRATCH}' = small BART trained from scratch with a BPE tokenizer "
                                     "fitted on your data; or an AutoModelForSeq2SeqLM hub name or folder"),
                "tokenizer_name": opt("", "tokenizer hub name or folder for a checkpoint ('' = its own)"),
                "vocab_size": opt(2000, f"subword vocabulary of the tokenizer trained for '{SCRATCH}'"),
                "layers": opt(2, f"encoder and decoder layers of '{SCRATCH}' (each)"),
                "hidden": opt(128, f"model width of '{SCRATCH}'"),
                "heads": opt(4, f"attention heads of '{SCRATCH}'"),
                "ffn": opt(512, f"feed-forward width of '{SCRATCH}'"),
                "src_lang": opt("", "source language code for checkpoints that need one (en_XX, eng_Latn)"),
                "tgt_lang": opt("", "target language code; also forces it as the first generated token where "
                                    "the tokenizer knows it (mBART, NLLB, M2M100)"),
                "source_prefix": opt("", "text put before every source ('translate English to French: ' "
                                         "for T5)"),
                "dropout": 0.1,
            },
            "loss": {"label_smoothing": 0.1},
            "train": {
                "epochs": 30, "warmup": 0.1, "patience": 10,
                "lr": opt(None, f"peak learning rate; null = {SCRATCH_LR} for {SCRATCH}, {FINETUNE_LR} to "
                                "fine-tune a checkpoint", type=float),
            },
            "generate": {
                "num_beams": opt(4, "beam width for the final evaluation and predict (1 = greedy)"),
                "val_beams": opt(1, "beam width for the per-epoch validation that picks the best epoch "
                                    "(greedy is several times faster and ranks epochs alike)"),
                "max_new_tokens": opt(0, "longest translation in tokens (0 = 1.5x the longest training "
                                         "target)"),
                "length_penalty": opt(1.0, "beam-search length penalty (>1 favours longer translations)"),
            },
            "eval": {
                "bleu_tokenize": opt("13a", "sacreBLEU tokenizer (zh for Chinese targets, char for other "
                                            "unsegmented scripts)", BLEU_TOKENIZERS),
                "examples": opt(5, "example translations (source, reference, hypothesis) in the evaluation"),
            },
        }

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        from dlkit.modeling import make_loss

        self.loss = make_loss(cfg["loss"], ("cross_entropy",))
        if cfg["train"]["lr"] is None:  # resolved here, so the run's config.yaml records the value used
            cfg["train"]["lr"] = SCRATCH_LR if cfg["model"]["name"] == SCRATCH else FINETUNE_LR
        self._tokenizer = None
        self._state: dict | None = None
        self._fresh_checkpoint = False  # the first build after fitting loads the checkpoint's weights
        self._training_models: weakref.WeakSet = weakref.WeakSet()
        self._examples: list[dict] = []

    # --- data -----------------------------------------------------------------------------
    def _read_table(self, path: Path) -> tuple[list[tuple[str, str]], list[str | None]]:
        """(source, target) pairs, cleaned, and each row's split ('train'/'val'/'test', or None)."""
        d = self.cfg["data"]
        columns = [d["source_column"], d["target_column"]]
        frame = read_text_table(path, columns, d["encoding"])
        pairs = list(zip(*(frame[c].map(clean_text) for c in columns), strict=True))
        splits: list[str | None] = [None] * len(pairs)
        if "split" in frame.columns:
            for row, raw in enumerate(frame["split"]):
                name = "" if pd.isna(raw) else str(raw).strip().lower()
                if name and name not in SPLIT_NAMES:
                    raise UserError(f"'{path}' row {row + 2}: split '{raw}' is not one of train, val, test")
                splits[row] = SPLIT_NAMES.get(name)
        return pairs, splits

    def _read(self, path: Path) -> tuple[list[tuple[str, str]], list[str | None]]:
        """A table file, or a folder of tables named by split (train.tsv, dev.tsv, test.tsv...)."""
        if path.is_file():
            return self._read_table(path)
        tables = sorted(p for p in path.iterdir()
                        if p.is_file() and p.stem.lower() in SPLIT_NAMES and p.suffix.lower() in FORMATS)
        if not tables:
            raise UserError(f"no tables in folder '{path}'",
                            "give a TSV/CSV/JSONL file of source,target pairs, or a folder with train.tsv "
                            "(and optionally val.tsv / test.tsv)")
        pairs, splits = [], []
        for table in tables:
            got, _ = self._read_table(table)
            pairs += got
            splits += [SPLIT_NAMES[table.stem.lower()]] * len(got)
        return pairs, splits

    def _split(self, pairs: list[tuple[str, str]], splits: list[str | None],
               ) -> tuple[dict[str, list[int]], str | None]:
        """Indices per split (a given split column or folder first, else random) and a note on the val cap."""
        d, seed = self.cfg["data"], self.cfg["seed"]
        if not any(splits):
            tr, va, te = random_split(len(pairs), d["val_fraction"], d["test_fraction"], seed)
            groups = {"train": tr, "val": va, "test": te}
            explicit = False
        else:
            groups = {s: [i for i, sp in enumerate(splits) if sp == s] for s in ("train", "val", "test")}
            groups["train"] += [i for i, sp in enumerate(splits) if sp is None]
            missing = [s for s in ("val", "test") if not groups[s]]
            if missing:
                train = sorted(groups["train"])
                tr, va, te = random_split(len(train), d["val_fraction"] if "val" in missing else 0.0,
                                          d["test_fraction"] if "test" in missing else 0.0, seed)
                groups = {"train": [train[i] for i in tr], "val": groups["val"] or [train[i] for i in va],
                          "test": groups["test"] or [train[i] for i in te]}
            explicit = True
        cap = d["max_val_pairs"]
        if not cap or len(groups["val"]) <= cap:
            return groups, None
        extra = groups["val"][cap:]
        groups["val"] = groups["val"][:cap]
        if not explicit:
            groups["train"] = sorted(groups["train"] + extra)
        return groups, (f"validation uses {cap} pairs (data.max_val_pairs); the other {len(extra)} "
                        + ("are left out" if explicit else "joined training"))

    def _clean(self, path: Path, pairs: list[tuple[str, str]], state: dict | None,
               ) -> tuple[Cleaned, list[str]]:
        d = self.cfg["data"]
        cleaned = clean_pairs(pairs, d["max_chars"], d["max_length_ratio"],
                              state["median_ratio"] if state else None)
        if not cleaned.kept:
            raise UserError(f"no sentence pairs left in '{path}' after cleaning ({len(pairs)} rows read; "
                            f"removed by {cleaned.summary()})",
                            "check data.source_column / data.target_column point at the text columns, or "
                            "relax data.max_chars / data.max_length_ratio")
        notes = []
        if cleaned.removed:
            dropped = len(pairs) - len(cleaned.kept)
            notes.append(f"cleaning removed {dropped} of {len(pairs)} pairs in '{path}' "
                         f"({cleaned.summary()})")
        if cleaned.identical:
            notes.append(f"{cleaned.identical} pair(s) have a target identical to the source (kept; many of "
                         "them suggest untranslated rows)")
        targets = [pairs[i][1] for i in cleaned.kept]
        if sum(t.endswith(" .") for t in targets) > len(targets) / 2:
            notes.append("most targets look tokenized ('word .'): sacreBLEU expects detokenized text, so "
                         "BLEU here is not comparable with published scores")
        return cleaned, notes

    def load_data(self, path: Path, state: dict | None = None, evaluate_all: bool = False) -> RecipeData:
        pairs, splits = self._read(path)
        cleaned, notes = self._clean(path, pairs, state)
        if evaluate_all:
            groups = {"train": [], "val": [], "test": cleaned.kept}
        else:
            kept = set(cleaned.kept)
            order = [i for i in range(len(pairs)) if i in kept]
            groups, note = self._split([pairs[i] for i in order], [splits[i] for i in order])
            groups = {s: [order[i] for i in idx] for s, idx in groups.items()}
            notes += [note] if note else []
            empty = [s for s in ("train", "val", "test") if not groups[s]]
            if empty:
                raise UserError(f"only {len(order)} sentence pairs in '{path}' after cleaning; the "
                                f"{' and '.join(empty)} split would be empty",
                                "add more pairs (a few hundred at least) or adjust data.val_fraction / "
                                "data.test_fraction")
        if state is None:
            state = self._fit([pairs[i] for i in groups["train"]], cleaned)
            state["counts"] = {s: len(idx) for s, idx in groups.items()}
        self._state = state
        sets = {s: self._pair_set([pairs[i] for i in idx], idx, by_length=s != "train")
                for s, idx in groups.items()}
        return RecipeData(sets["train"], sets["val"], sets["test"], state, notes=notes)

    def _pair_set(self, pairs: list[tuple[str, str]], ids: list, by_length: bool) -> PairSet:
        return PairSet([s for s, _ in pairs], [t for _, t in pairs], ids, self._encoder(), by_length)

    def _encoder(self):
        """Tokenise sources (after model.source_prefix) and targets if given; both cut at data.max_length."""
        tokenizer = self.tokenizer()
        prefix = self.cfg["model"]["source_prefix"]
        limit = self.cfg["data"]["max_length"]

        def encode(sources: list[str], targets: list[str] | None) -> dict:
            if not sources:
                return {"input_ids": [], "labels": [] if targets is not None else None}
            return tokenizer([prefix + s for s in sources], text_target=targets, truncation=True,
                             max_length=limit)

        return encode

    # --- fitting: tokenizer and model config ------------------------------------------------
    def _fit(self, train: list[tuple[str, str]], cleaned: Cleaned) -> dict:
        """Fit on the training pairs: the tokenizer (or the checkpoint's), model and generation configs."""
        m = self.cfg["model"]
        state = {"median_ratio": cleaned.median_ratio,
                 "cleaning": {"removed": cleaned.removed, "identical_kept": cleaned.identical},
                 "sacrebleu": sacrebleu_signatures(self.cfg["eval"]["bleu_tokenize"])}
        if m["name"] == SCRATCH:
            self._tokenizer = scratch_tokenizer([t for pair in train for t in pair], m["vocab_size"])
            state["tokenizer"] = {"json": tokenizer_to_json(self._tokenizer)}
            config = self._scratch_config(self._tokenizer)
        else:
            self._tokenizer = self._load_tokenizer(m["tokenizer_name"] or m["name"])
            state["tokenizer"] = {"files": tokenizer_files(self._tokenizer)}
            config = self._checkpoint_config(m["name"])
            self._fresh_checkpoint = True
        self._check_fit(config, self._tokenizer)
        state["model"] = {"source": m["name"], "config": config.to_dict(),
                          "generation": self._generation_config(m["name"], config).to_dict()}
        longest = max(len(ids) for ids in self._tokenizer(text_target=[t for _, t in train])["input_ids"])
        state["max_new_tokens"] = min(self.cfg["data"]["max_length"] - 1, math.ceil(1.5 * longest) + 5)
        return state

    def _scratch_config(self, tokenizer):
        from transformers import BartConfig

        m = self.cfg["model"]
        return BartConfig(
            vocab_size=len(tokenizer), d_model=m["hidden"], encoder_layers=m["layers"],
            decoder_layers=m["layers"], encoder_attention_heads=m["heads"],
            decoder_attention_heads=m["heads"], encoder_ffn_dim=m["ffn"],
            decoder_ffn_dim=m["ffn"], max_position_embeddings=self.cfg["data"]["max_length"],
            dropout=m["dropout"], pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id, decoder_start_token_id=tokenizer.cls_token_id,
            forced_eos_token_id=None,
        )

    @staticmethod
    def _hub_error(kind: str, name: str, exc: Exception) -> UserError:
        where = "is not a folder holding one" if Path(name).expanduser().exists() else \
            "is neither a local folder nor a hub model in the local cache"
        return UserError(f"{kind} '{name}' {where} ({str(exc).strip().splitlines()[0][:200]})",
                         "give a folder written by save_pretrained, or a hub name with network access "
                         "(HF_HUB_OFFLINE unset)")

    def _load_tokenizer(self, name: str):
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(_where(name), local_files_only=_offline())
        except (OSError, ValueError) as exc:
            raise self._hub_error("tokenizer", name, exc) from None
        self._set_languages(tokenizer)
        return tokenizer

    def _checkpoint_config(self, name: str):
        from transformers import AutoConfig

        try:
            config = AutoConfig.from_pretrained(_where(name), local_files_only=_offline())
        except (OSError, ValueError) as exc:
            raise self._hub_error("model.name", name, exc) from None
        if not config.is_encoder_decoder:
            raise UserError(f"model.name '{name}' is a {config.model_type} model, not an encoder-decoder",
                            "translation needs a seq2seq checkpoint (Marian, T5, BART, mBART, NLLB...)")
        return config

    @staticmethod
    def _generation_config(name: str, config):
        """The checkpoint's generation defaults (e.g. Marian bans generating padding), else the config's."""
        from transformers import GenerationConfig

        if name != SCRATCH:
            try:
                return GenerationConfig.from_pretrained(_where(name), local_files_only=_offline())
            except OSError:
                pass
        return GenerationConfig.from_model_config(config)

    def _check_fit(self, config, tokenizer) -> None:
        """Refuse a tokenizer whose ids the model cannot embed, before any run directory is written."""
        model_vocab = getattr(config, "vocab_size", None)
        if model_vocab is not None and len(tokenizer) > model_vocab:
            raise UserError(
                f"the tokenizer has {len(tokenizer)} tokens but model '{self.cfg['model']['name']}' embeds "
                f"only {model_vocab} (vocab_size): its ids would index past the embedding table",
                "use the tokenizer saved with that model (model.tokenizer_name='' or its folder)")
        if tokenizer.pad_token_id is None:
            name = self.cfg["model"]["tokenizer_name"] or self.cfg["model"]["name"]
            raise UserError(f"tokenizer '{name}' has no padding token",
                            "use a seq2seq tokenizer that defines pad_token")
        if config.decoder_start_token_id is None and config.bos_token_id is None:
            raise UserError(f"model '{self.cfg['model']['name']}' defines no decoder_start_token_id",
                            "set decoder_start_token_id in its config.json")

    def _set_languages(self, tokenizer) -> None:
        m = self.cfg["model"]
        for attr, code in (("src_lang", m["src_lang"]), ("tgt_lang", m["tgt_lang"])):
            if code and hasattr(tokenizer, attr):
                setattr(tokenizer, attr, code)

    def tokenizer(self, state: dict | None = None):
        """The run's tokenizer, rebuilt once from state (never from the original folder or the hub)."""
        state = state or self._state
        if self._tokenizer is None:
            stored = state["tokenizer"]
            self._tokenizer = (tokenizer_from_json(stored["json"]) if "json" in stored
                               else tokenizer_from_files(stored["files"]))
            self._set_languages(self._tokenizer)
        return self._tokenizer

    # --- model and step --------------------------------------------------------------------
    def build_model(self, state: dict) -> torch.nn.Module:
        from transformers import AutoConfig, AutoModelForSeq2SeqLM, GenerationConfig

        self._state = state
        stored = dict(state["model"]["config"])
        _quiet_transformers()
        if self._fresh_checkpoint:
            self._fresh_checkpoint = False
            model = AutoModelForSeq2SeqLM.from_pretrained(
                _where(state["model"]["source"]), dtype=torch.float32, local_files_only=_offline())
        else:
            config = AutoConfig.for_model(stored.pop("model_type"), **stored)
            model = AutoModelForSeq2SeqLM.from_config(config)
        model.generation_config = GenerationConfig.from_dict(state["model"]["generation"])
        return model

    def collate(self, items: list[dict]) -> dict:
        return pad_collate(items, {"input_ids": self.tokenizer().pad_token_id, "labels": -100})

    def _generation_kwargs(self, beams: int) -> dict:
        g = self.cfg["generate"]
        kwargs = {"num_beams": beams, "do_sample": False,
                  "max_new_tokens": g["max_new_tokens"] or self._state["max_new_tokens"]}
        if beams > 1:
            kwargs.update(length_penalty=g["length_penalty"], early_stopping=True)
        target = self.cfg["model"]["tgt_lang"]
        if target:
            tokenizer = self.tokenizer()
            lang_id = (tokenizer.get_lang_id(target) if hasattr(tokenizer, "get_lang_id")
                       else tokenizer.convert_tokens_to_ids(target))
            if lang_id is not None and lang_id != tokenizer.unk_token_id:
                kwargs["forced_bos_token_id"] = lang_id
        return kwargs

    def translate(self, model: torch.nn.Module, batch: dict, beams: int) -> list[str]:
        """Generated translations, decoded; empty sources come back empty without being translated."""
        out = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                             **self._generation_kwargs(beams))
        texts = self.tokenizer().batch_decode(out, skip_special_tokens=True)
        return [text.strip() if source else "" for text, source in zip(texts, batch["source"], strict=True)]

    def step(self, model: torch.nn.Module, batch: dict) -> dict:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       labels=batch["labels"]).logits
        loss = self.loss(logits.flatten(0, 1).float(), batch["labels"].flatten())
        if model.training:
            self._training_models.add(model)
            return {"loss": loss, "preds": [], "target": []}
        trained_here = model in self._training_models  # validation inside fit, not the final evaluation
        beams = self.cfg["generate"]["val_beams" if trained_here else "num_beams"]
        hypotheses = self.translate(model, batch, beams)
        if not trained_here:
            self._examples += [{"source": s, "reference": r, "hypothesis": h}
                               for s, r, h in zip(batch["source"], batch["target"], hypotheses, strict=True)]
        return {"loss": loss, "preds": hypotheses, "target": batch["target"]}

    def metrics(self, state: dict) -> dict:
        self._examples = []
        return sacrebleu_metrics(self.cfg["eval"]["bleu_tokenize"])

    def baseline(self, data: RecipeData) -> dict:
        """Copy the source as the 'translation' (scores what the languages share: names, numbers, cognates).

        The dict also carries the sacreBLEU signatures and a few example translations of the evaluation
        just run, so eval.json shows how the scores were computed and what the output looks like.
        """
        test = data.test
        values: dict = {}
        for name, metric in sacrebleu_metrics(self.cfg["eval"]["bleu_tokenize"]).items():
            metric.update(test.sources, test.targets)
            values[name] = float(metric.compute())
        values["method"] = "copy the source"
        values["sacrebleu_signature"] = data.state["sacrebleu"]
        values["examples"] = self._pick_examples()
        return values

    def _pick_examples(self) -> list[dict]:
        """Evenly spaced examples of the final evaluation, also shown on the terminal."""
        wanted = self.cfg["eval"]["examples"]
        if not self._examples or wanted <= 0:
            return []
        stride = max(1, len(self._examples) // wanted)
        picked = self._examples[::stride][:wanted]
        console.info("example translations (test split, from short to long sources):")
        for ex in picked:
            console.info(f"  [dim]source[/]     {ex['source']}\n  [dim]reference[/]  {ex['reference']}\n"
                         f"  [dim]model[/]      {ex['hypothesis']}")
        return picked

    # --- predict ---------------------------------------------------------------------------
    def _sentences(self, raw: str) -> list[str]:
        """One input argument -> sentences: a table's source column, a text file (one a line), or the text."""
        if not raw.strip():
            return [""]
        path = Path(raw).expanduser()
        suffix, encoding = path.suffix.lower(), self.cfg["data"]["encoding"]
        if path.is_dir():
            raise UserError(f"input '{raw}' is a folder",
                            "give sentences, or text files with one sentence per line")
        if not path.is_file():
            if suffix in TEXT_FILE_SUFFIXES and not any(c.isspace() for c in raw):
                raise UserError(f"input file '{raw}' does not exist",
                                "to translate text that looks like a file name, add a space or punctuation")
            return [clean_text(raw)]
        if suffix in TABLE_SUFFIXES:
            column = self.cfg["data"]["source_column"]
            return read_text_table(path, [column], encoding)[column].map(clean_text).tolist()
        try:
            return [clean_text(line) for line in path.read_text(encoding=encoding).splitlines()]
        except UnicodeDecodeError as exc:
            raise UserError(f"'{path}' is not valid {encoding} text ({exc.reason})",
                            "pass its encoding, e.g. data.encoding=latin-1") from None

    def read_inputs(self, inputs: list[str], state: dict) -> Dataset:
        self._state = state
        sentences = [s for raw in inputs for s in self._sentences(raw)]
        if sentences and not any(sentences):
            raise UserError("nothing to translate: every input is empty",
                            "pass a sentence in quotes, or a text file with one sentence per line")
        return PairSet(sentences, None, list(range(len(sentences))), self._encoder(), by_length=True)

    def predict_step(self, model: torch.nn.Module, batch: dict) -> dict:
        translations = self.translate(model, batch, self.cfg["generate"]["num_beams"])
        return {"source": batch["source"], "translation": translations}

    def to_records(self, ids: list, outputs: dict, state: dict) -> list[dict]:
        """One record per input sentence, back in input order (batches ran in length order)."""
        rows = sorted(zip(ids, outputs["source"], outputs["translation"], strict=True))
        return [{"source": source, "translation": translation} for _, source, translation in rows]

    # --- native export ---------------------------------------------------------------------
    def save_native(self, model: torch.nn.Module, state: dict, folder: Path) -> None:
        """Model + tokenizer via save_pretrained, with the configured beam search as its generation config."""
        kwargs = self._generation_kwargs(self.cfg["generate"]["num_beams"])
        for key, value in kwargs.items():
            setattr(model.generation_config, key, value)
        _quiet_transformers()
        model.save_pretrained(folder)
        self.tokenizer(state).save_pretrained(folder)
