"""The nlp-chat recipe: config, data and state, model and step, metrics, baselines, predict and chat."""

from __future__ import annotations

from pathlib import Path

import torch
from dlkit_recipes.nlp_chat.baselines import Retriever, fit_retrieval, fit_unigram, predictors
from dlkit_recipes.nlp_chat.config import FINETUNE_LR, SCRATCH_LR, recipe_config
from dlkit_recipes.nlp_chat.data import (
    ChatSet,
    chat_set,
    contexts,
    prompt_item,
    read_examples,
    split_examples,
    window,
)
from dlkit_recipes.nlp_chat.metrics import chat_metrics
from dlkit_recipes.nlp_chat.model import SCRATCH, build, fit, generation_kwargs, make_format, respond
from rich.markup import escape
from torch.utils.data import Dataset

from dlkit import console, hf
from dlkit.errors import UserError
from dlkit.recipe import Recipe, RecipeData

EXAMPLE_KEYS = ("context", "reference", "model", "retrieval")
# the markers layout as a Jinja chat template, so the exported model chats in any transformers pipeline
MARKERS_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] + eos_token }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


class NlpChat(Recipe):
    name = "nlp-chat"
    task = "dialogue (chatbot)"
    description = "Answer conversations with a small GPT trained from scratch, or a local checkpoint."
    default_model = SCRATCH
    sample_data = "sample_data/nlp_chat"
    sample_inputs = ("sample_data/nlp_chat/prompts.txt",)
    # chrF of generated responses picks the best check and judges the baselines: it is what a user reads
    # (perplexity, also reported, cannot be compared with a retrieval bot, which has none)
    monitor = "chrf"
    monitor_mode = "max"
    inference_keys = (
        "data.encoding",
        "data.context_column",
        "data.response_column",
        "data.turn_separator",
        "eval.",
    )

    @classmethod
    def config(cls) -> dict:
        return recipe_config()  # config.py: light, so `dlkit info` reads it without torch

    @classmethod
    def resolve_config(cls, cfg: dict) -> dict:
        """`train.lr: null` -> the rate for training from scratch or fine-tuning, recorded in config.yaml."""
        if cfg["train"]["lr"] is None:
            cfg["train"]["lr"] = SCRATCH_LR if cfg["model"]["name"] == SCRATCH else FINETUNE_LR
        return cfg

    def setup(self, state: dict, fresh: bool) -> None:
        """Loss, the run's tokenizer and conversation layout, decoding per stage (validation is greedy: it
        only ranks checks); a new run from a checkpoint starts from its weights."""
        from dlkit.modeling import make_loss

        self.loss = make_loss({**self.cfg["loss"], "label_smoothing": 0.0}, ("cross_entropy",))
        self.tokenizer = hf.tokenizer_from_state(state["tokenizer"])
        self.format = make_format(state, self.tokenizer, self.cfg)
        retrieval = state["baselines"]["retrieval"] if self.cfg["model"]["retrieve"] else None
        self.retrieve = Retriever(retrieval) if retrieval else lambda contexts: [None] * len(contexts)
        g = self.cfg["generate"]
        self.decoding = {"val": generation_kwargs(g, "greedy"), "test": generation_kwargs(g, g["strategy"])}
        self.init_from = state["model"]["source"] if fresh and state["model"]["source"] != SCRATCH else None
        if self.init_from:
            console.info(f"fine-tuning pretrained weights of {self.init_from} ({state['kind']} layout)")

    # --- data ---------------------------------------------------------------------------------------
    def load_data(self, path: Path, state: dict | None = None, evaluate_all: bool = False) -> RecipeData:
        cfg = self.cfg
        examples, given, cleaning, conversations = read_examples(path, cfg["data"])
        notes = (
            [f"cleaning in '{path}' ({conversations} conversations): {cleaning.summary()}"]
            if cleaning.counts
            else []
        )
        if evaluate_all:
            groups = {"train": [], "val": [], "test": list(range(len(examples)))}
        else:
            groups = split_examples(examples, given, cfg)
            empty = [s for s in ("train", "val", "test") if not groups[s]]
            if empty:
                raise UserError(
                    f"only {len(examples)} exchanges in '{path}' after cleaning; the {' and '.join(empty)} "
                    "split would be empty",
                    "add conversations (a few hundred at least) or adjust data.val_fraction / "
                    "data.test_fraction",
                )
        parts = {s: [examples[i] for i in idx] for s, idx in groups.items()}
        if state is None:
            # each turn once (a turn is in the context of every later exchange of its conversation)
            turns = {
                (e.conversation, t): t for e in parts["train"] for _, t in [*e.context, ("", e.response)]
            }
            texts = list(turns.values())
            state, tokenizer = fit(cfg, texts)
        else:
            tokenizer = hf.tokenizer_from_state(state["tokenizer"])
        fmt = make_format(state, tokenizer, cfg)
        fitting = "baselines" not in state
        retrieval = (
            fit_retrieval(parts["train"], parts["val"]) if fitting else state["baselines"]["retrieval"]
        )
        hints = self._hints(retrieval, parts)
        sets = {
            s: chat_set(fmt, parts[s], groups[s], s != "train", hints[s]) if groups[s] else None
            for s in ("train", "val", "test")
        }
        if fitting:
            state.update(
                cleaning=cleaning.counts,
                counts={s: len(idx) for s, idx in groups.items()},
                baselines={
                    "retrieval": retrieval,
                    "unigram": fit_unigram(  # one item per exchange (retrieve_train gives k in a row)
                        sets["train"].items[:: len(hints["train"][0]) if hints["train"] else 1],
                        [e.response for e in parts["train"]],
                        len(tokenizer),
                    ),
                },
            )
        return RecipeData(sets["train"], sets["val"], sets["test"], state, notes=notes)

    def _hints(self, retrieval: dict, parts: dict) -> dict:
        """Per split, each example's retrieved response (None without model.retrieve): for training, that of
        another conversation (Retriever.for_training)."""
        m = self.cfg["model"]
        if not m["retrieve"]:
            return dict.fromkeys(parts)
        retrieve = Retriever(retrieval)
        return {
            s: retrieve.for_training(examples, m["retrieve_train"], m["retrieve_noise"], self.cfg["seed"])
            if s == "train"
            else [[hint] for hint in retrieve([e.context for e in examples])]
            for s, examples in parts.items()
        }

    def collate(self, items: list[dict]) -> dict:
        """Right-padded input_ids/labels (labels padded with -100) and the prompts padded for generation."""
        pad = self.tokenizer.pad_token_id
        rest = [{k: v for k, v in item.items() if k != "prompt_ids"} for item in items]
        batch = hf.pad_collate(rest, {"input_ids": pad, "labels": -100} if "input_ids" in items[0] else {})
        left = self.format.kind != "seq2seq"
        batch["prompt_ids"], batch["prompt_mask"] = hf.pad_sequences(
            [i["prompt_ids"] for i in items], pad, left
        )
        return batch

    # --- model, step, metrics, baselines ----------------------------------------------------------------
    def build_model(self, state: dict) -> torch.nn.Module:
        return build(state, self.init_from)

    def step(self, model: torch.nn.Module, batch: dict, stage: str) -> dict:
        """Next-token loss on the assistant's tokens only (labels are -100 elsewhere); "val" and "test" also
        score each response's likelihood (perplexity) and generate one (greedy for "val")."""
        import torch.nn.functional as F

        labels = batch["labels"]
        if self.format.kind == "seq2seq":
            logits = model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels
            ).logits
        else:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[
                :, :-1
            ]
            labels = labels[:, 1:]
        logits = logits.float()
        loss = self.loss(logits.flatten(0, 1), labels.flatten())
        if stage == "train":
            return {"loss": loss, "preds": [], "target": []}
        nll = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100, reduction="none").sum(1)
        texts = self.reply(model, batch, stage)
        preds = {"texts": texts, "nll": nll, "tokens": (labels != -100).sum(1)}
        return {"loss": loss, "preds": preds, "target": list(batch["response"])}

    def reply(self, model: torch.nn.Module, batch: dict, stage: str = "test") -> list[str]:
        return respond(model, self.format, batch, self.decoding[stage], self.cfg["seed"])

    def metrics(self, state: dict) -> dict:
        return chat_metrics(self.cfg["eval"]["bleu_tokenize"])

    def baselines(self, data: RecipeData) -> dict:
        """The TF-IDF retrieval bot and the most-frequent-response bot (with the unigram perplexity)."""
        return predictors(data.state)

    def eval_details(self, data: RecipeData, metrics: dict, baselines: dict) -> dict:
        """Example exchanges (context, reference, model, retrieval), also printed; the cleaning report."""
        items = data.test.items if data.test is not None else []
        model_pairs = metrics["chrf"].pairs()
        retrieved = baselines["retrieval"]["chrf"].pairs() if "retrieval" in baselines else []
        wanted = self.cfg["eval"]["examples"]
        examples = []
        if wanted > 0 and len(model_pairs) == len(items) == len(retrieved):
            for k in range(0, len(items), max(1, len(items) // wanted))[:wanted]:
                context = [f"{role}: {text}" for role, text in items[k]["context"]]
                examples.append(
                    {
                        "context": context,
                        "reference": items[k]["response"],
                        "model": model_pairs[k][0],
                        "retrieval": retrieved[k][0],
                    }
                )
        if examples:
            console.info("example responses (test split):")
            for ex in examples:
                lines = {"context": " | ".join(ex["context"][-2:]), **ex}
                console.info(
                    "\n".join(f"  [dim]{key:<10}[/] {escape(str(lines[key]))}" for key in EXAMPLE_KEYS)
                )
        return {
            "decoding": {k: v for k, v in self.decoding["test"].items()},
            "layout": data.state["kind"],
            "retrieval_features": data.state["baselines"]["retrieval"]["analyzer"],
            "cleaning": data.state.get("cleaning", {}),
            "examples": examples,
            "note": "most_frequent's perplexity is the unigram perplexity of the assistant tokens; the "
            "retrieval bot assigns no probabilities (NaN)",
        }

    # --- predict and chat -------------------------------------------------------------------------------
    def read_inputs(self, inputs: list[str], state: dict) -> Dataset:
        """Prompts in quotes, .txt files (one user turn a line), conversation files (each answered whole)."""
        found = [c for raw in inputs for c in contexts(raw, self.cfg["data"])]
        if not found or not any(turns and turns[-1][1] for turns in found):
            raise UserError(
                "nothing to answer: every input is empty",
                "give a prompt in quotes or a .txt file, one a line",
            )
        pairs = zip(found, self.retrieve(found), strict=True)
        items = [prompt_item(self.format, turns, i, hint) for i, (turns, hint) in enumerate(pairs)]
        return ChatSet(
            items, hf.length_order([len(i["prompt_ids"]) for i in items], hf.predict_block(self.cfg))
        )

    def predict_step(self, model: torch.nn.Module, batch: dict) -> dict:
        prompts = [next((t for r, t in reversed(c) if r == "user"), "") for c in batch["context"]]
        return {"prompt": prompts, "response": self.reply(model, batch)}

    def to_records(self, ids: list, outputs: dict, state: dict) -> list[dict]:
        """One record per prompt or conversation, back in input order."""
        rows = sorted(zip(ids, outputs["prompt"], outputs["response"], strict=True))
        return [{"prompt": prompt, "response": response} for _, prompt, response in rows]

    def chat_batch(self, turns: list[dict]) -> dict:
        """The conversation so far as a batch for `predict_step`: its newest turns that fit the context."""
        context = window([(t["role"], t["content"]) for t in turns], self.cfg["data"]["max_turns"])
        return self.collate([prompt_item(self.format, context, 0, self.retrieve([context])[0])])

    # --- native export ----------------------------------------------------------------------------------
    def save_native(self, model: torch.nn.Module, state: dict, folder: Path) -> None:
        """Model + tokenizer via save_pretrained; the scratch model's tokenizer gets its chat template. A
        model with the copy head (model.copy) loads with `CopyGPT2.from_pretrained(folder)`
        (dlkit_recipes.nlp_chat.copying); AutoModelForCausalLM would load the GPT-2 without its head."""
        if state["kind"] == "markers":
            self.tokenizer.chat_template = MARKERS_TEMPLATE
        hf.save_pretrained(model, self.tokenizer, folder)
