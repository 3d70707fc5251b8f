"""The nlp-translation recipe: config, data and state, model and step, metrics, baselines, predict."""

from __future__ import annotations

from pathlib import Path

import torch
from dlkit_recipes.nlp_translation.baselines import fit_lexicon, fit_memory, predictors
from dlkit_recipes.nlp_translation.config import FINETUNE_LR, SCRATCH_LR, recipe_config
from dlkit_recipes.nlp_translation.data import clean, pair_set, predict_set, read_pairs, split_pairs
from dlkit_recipes.nlp_translation.drafts import drafter
from dlkit_recipes.nlp_translation.metrics import (
    pick_examples,
    signatures,
    translation_metrics,
)
from dlkit_recipes.nlp_translation.model import (
    SCRATCH,
    build,
    fit,
    generation_kwargs,
    set_languages,
    translate,
)
from torch.utils.data import Dataset

from dlkit import console, hf
from dlkit.errors import UserError
from dlkit.recipe import Recipe, RecipeData

BEAMS = {"val": "val_beams", "test": "num_beams"}  # which beam width each evaluation stage decodes with


class NlpTranslation(Recipe):
    name = "nlp-translation"
    task = "machine translation"
    description = "Translate sentences with a seq2seq transformer (small BART from scratch, or a checkpoint)."
    default_model = SCRATCH
    sample_data = "sample_data/nlp_translation/pairs.tsv"
    sample_inputs = ("sample_data/nlp_translation/pairs.tsv",)  # its source column
    # chrF, not BLEU, picks the best epoch and judges the baselines: on a few hundred short strings corpus
    # BLEU stays 0 for many epochs (no 4-gram matches yet), so it cannot tell a model that is starting
    # to translate from one that emits the same sentence for every input; chrF moves from the start.
    monitor = "chrf"
    monitor_mode = "max"
    # Reading other files and scoring differently never changes the fitted model (generate.* is shared).
    inference_keys = ("data.encoding", "data.source_column", "data.target_column", "eval.")

    @classmethod
    def config(cls) -> dict:
        return recipe_config()  # config.py: light, so `dlkit info` reads it without torch

    @classmethod
    def resolve_config(cls, cfg: dict) -> dict:
        """`train.lr: null` and `model.draft: null` -> the choice for training from scratch or fine-tuning,
        recorded in config.yaml. A checkpoint gets no draft by default: it was pretrained on plain
        sources, and a short fine-tuning may not teach it the new input."""
        scratch = cfg["model"]["name"] == SCRATCH
        if cfg["train"]["lr"] is None:
            cfg["train"]["lr"] = SCRATCH_LR if scratch else FINETUNE_LR
        if cfg["model"]["draft"] is None:
            cfg["model"]["draft"] = "words" if scratch else "none"
        return cfg

    def setup(self, state: dict, fresh: bool) -> None:
        """Loss, the run's tokenizer (from state, never the original folder or the hub), decoding settings
        per stage; a new run from a checkpoint starts from its weights."""
        from dlkit.modeling import make_loss

        self.loss = make_loss(self.cfg["loss"], ("cross_entropy",))
        self.tokenizer = set_languages(hf.tokenizer_from_state(state["tokenizer"]), self.cfg["model"])
        self.pad_id = self.tokenizer.pad_token_id
        g, m = self.cfg["generate"], self.cfg["model"]
        self.decoding = {
            stage: generation_kwargs(g, m, self.tokenizer, state["max_new_tokens"], g[key])
            for stage, key in BEAMS.items()
        }
        self.length_ratio = None if g["max_new_tokens"] else state["length_ratio"]
        self.drafter = drafter(state, state.get("draft", "none"))
        self.init_from = state["model"]["source"] if fresh and state["model"]["source"] != SCRATCH else None
        if self.init_from:
            console.info(f"fine-tuning pretrained weights of {self.init_from}")

    # --- data -----------------------------------------------------------------------------
    def load_data(self, path: Path, state: dict | None = None, evaluate_all: bool = False) -> RecipeData:
        cfg = self.cfg
        pairs, given = read_pairs(path, cfg["data"])
        cleaned, notes = clean(path, pairs, cfg["data"], state["median_ratio"] if state else None)
        if evaluate_all:
            groups = {"train": [], "val": [], "test": cleaned.kept}
        else:
            kept = cleaned.kept
            groups, note = split_pairs([given[i] for i in kept], cfg)
            groups = {s: [kept[i] for i in idx] for s, idx in groups.items()}
            notes += [note] if note else []
            empty = [s for s in ("train", "val", "test") if not groups[s]]
            if empty:
                raise UserError(
                    f"only {len(kept)} sentence pairs in '{path}' after cleaning; the {' and '.join(empty)} "
                    "split would be empty",
                    "add pairs (a few hundred at least) or adjust data.val_fraction / data.test_fraction",
                )
        if state is None:
            train, val = ([pairs[i] for i in groups[s]] for s in ("train", "val"))
            state, tokenizer = fit(cfg, train)
            state.update(
                median_ratio=cleaned.median_ratio,
                cleaning={"removed": cleaned.removed, "identical_kept": cleaned.identical},
                counts={s: len(idx) for s, idx in groups.items()},
                baselines={"lexicon": fit_lexicon(train), "memory": fit_memory(train, val)},
                draft=cfg["model"]["draft"],
            )
        else:
            tokenizer = set_languages(hf.tokenizer_from_state(state["tokenizer"]), cfg["model"])
        drafts = drafter(state, state.get("draft", "none"))
        sets = {
            s: pair_set(tokenizer, cfg, [pairs[i] for i in idx], idx, s != "train", drafts) if idx else None
            for s, idx in groups.items()
        }
        return RecipeData(sets["train"], sets["val"], sets["test"], state, notes=notes)

    def collate(self, items: list[dict]) -> dict:
        return hf.pad_collate(items, {"input_ids": self.pad_id, "labels": -100})

    # --- model, step, metrics, baselines -----------------------------------------------------
    def build_model(self, state: dict) -> torch.nn.Module:
        return build(state, self.init_from)

    def step(self, model: torch.nn.Module, batch: dict, stage: str) -> dict:
        """Teacher-forced loss; "val" also decodes greedily (generate.val_beams) to rank epochs cheaply,
        "test" with the full beam search (generate.num_beams)."""
        logits = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]
        ).logits
        loss = self.loss(logits.flatten(0, 1).float(), batch["labels"].flatten())
        if stage == "train":
            return {"loss": loss, "preds": [], "target": []}
        hypotheses = translate(model, self.tokenizer, batch, self.decoding[stage], self.length_ratio)
        return {"loss": loss, "preds": hypotheses, "target": list(batch["target"])}

    def metrics(self, state: dict) -> dict:
        return translation_metrics(self.cfg["eval"]["bleu_tokenize"])

    def baselines(self, data: RecipeData) -> dict:
        """Copy the source (scores what the languages share: names, numbers, cognates), and word-by-word
        translation with the lexicon learned from the training pairs (kept in the state)."""
        return predictors(data.state)

    def eval_details(self, data: RecipeData, metrics: dict, baselines: dict) -> dict:
        """The sacreBLEU signatures and a few of the model's test translations (also printed)."""
        test = data.test
        sources = dict(zip(test.targets, test.sources, strict=True)) if test is not None else {}
        examples = pick_examples(metrics["bleu"], sources, self.cfg["eval"]["examples"])
        if examples:
            console.info("example translations (test split, from short to long sources):")
            for ex in examples:
                console.info(
                    f"  [dim]source[/]     {ex['source']}\n  [dim]reference[/]  {ex['reference']}\n"
                    f"  [dim]model[/]      {ex['hypothesis']}"
                )
        return {
            "sacrebleu": signatures(self.cfg["eval"]["bleu_tokenize"]),
            "decoding": {k: v for k, v in self.decoding["test"].items() if k != "do_sample"},
            "examples": examples,
            "lexicon_words": len(data.state["baselines"]["lexicon"]),
        }

    # --- predict ---------------------------------------------------------------------------
    def read_inputs(self, inputs: list[str], state: dict) -> Dataset:
        """Sentences in quotes, text files (one a line), tables with the source column, or folders."""
        return predict_set(inputs, self.tokenizer, self.cfg, self.drafter)

    def export_adapter(self, state: dict):
        from .export import TranslationExport

        return TranslationExport(self, state)

    def report_sections(self, data: RecipeData, tested, evaluation: dict, folder: Path) -> list:
        from .report import sections

        return sections(self, data, tested, evaluation, folder)

    def predict_step(self, model: torch.nn.Module, batch: dict) -> dict:
        return {
            "source": batch["source"],
            "translation": translate(model, self.tokenizer, batch, self.decoding["test"], self.length_ratio),
        }

    def to_records(self, ids: list, outputs: dict, state: dict) -> list[dict]:
        """One record per input sentence, back in input order (batches ran in length order)."""
        rows = sorted(zip(ids, outputs["source"], outputs["translation"], strict=True))
        return [{"source": source, "translation": translation} for _, source, translation in rows]

    # --- native export ---------------------------------------------------------------------
    def save_native(self, model: torch.nn.Module, state: dict, folder: Path) -> None:
        """Model + tokenizer via save_pretrained, with the configured beam search as its generation config."""
        for key, value in self.decoding["test"].items():
            setattr(model.generation_config, key, value)
        hf.save_pretrained(model, self.tokenizer, folder)
