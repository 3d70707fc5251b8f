"""Export of the translation model: native only for now. The Hugging Face folder (model, tokenizer, beam
search settings as its generation config) loads with `AutoModelForSeq2SeqLM.from_pretrained` and
translates with `generate`. ONNX/TorchScript (an encoder and a decoder graph driven by a greedy or beam
loop outside the graph) is not supported yet: `dlkit export --format onnx` says so (exit 2).

With drafting on (`model.draft`, drafts.py), the model reads `draft [SEP] source`: the folder's tokenizer
builds it from a text pair, `tokenizer(draft, source)`, and the draft is rebuilt from the lexicon and
memory in the exported state (`dlkit_recipes.nlp_translation.drafts.drafter(state, kind)`); export.json
says which draft the model expects.

Parity compares the teacher-forced logits of the reloaded folder with the run's model on the test split
(whose inputs carry their drafts).
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from dlkit import hf
from dlkit.export import ExportAdapter


class _Logits(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, labels):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).logits


class TranslationExport(ExportAdapter):
    inputs = ("input_ids", "attention_mask", "labels")
    outputs = ("logits",)
    formats = ("native",)

    def graph(self, model: nn.Module) -> nn.Module:
        return _Logits(model)

    def agreement(self, ref: tuple, got: tuple) -> tuple[int, int]:
        """The same next token (arg-max) at every target position."""
        same = ref[0].argmax(-1) == got[0].argmax(-1)
        return int(same.sum()), same.numel()

    def describe(self) -> dict:
        kind = self.state.get("draft", "none")
        if kind == "none":
            return {"input": "tokenizer(source)"}
        return {
            "input": "tokenizer(draft, source)",
            "draft": kind,
            "draft_from": "dlkit_recipes.nlp_translation.drafts.drafter(state, draft)(sources): the "
            "word-by-word translation (state.baselines.lexicon) and/or the translation memory's best match "
            "(state.baselines.memory), joined by [SEP]",
        }

    def save_native(self, model: nn.Module, folder: Path) -> dict:
        self.recipe.save_native(model, self.state, folder)
        return {
            "library": "transformers",
            "weights": "model.safetensors",
            "load": "AutoModelForSeq2SeqLM.from_pretrained('<this folder>'); "
            f"AutoTokenizer.from_pretrained('<this folder>'); inputs = {self.describe()['input']}; "
            "model.generate(**inputs) uses the run's beam search",
        }

    def load_native(self, folder: Path, native: dict) -> nn.Module:
        from transformers import AutoModelForSeq2SeqLM

        hf.quiet()
        return AutoModelForSeq2SeqLM.from_pretrained(folder)
