"""Export of the text classifier: token ids and attention mask (any length) -> class logits.

The tokenizer is written beside the graph (tokenizer/, loadable with `AutoTokenizer.from_pretrained`);
native is the Hugging Face folder training already wrote (RUN/model), loadable with `from_pretrained`.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from torch import nn

from dlkit import hf
from dlkit.export import CallModel, ExportAdapter


class _Logits(nn.Module):
    """model(input_ids=..., attention_mask=...).logits as a function of two tensors."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, weights=None):
        extra = {} if weights is None else {"weights": weights}
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits


class SentimentExport(ExportAdapter):
    inputs = ("input_ids", "attention_mask")
    outputs = ("logits",)
    dynamic = {"input_ids": {1: "tokens"}, "attention_mask": {1: "tokens"}}

    def __init__(self, recipe, state: dict):
        super().__init__(recipe, state)
        rnn = state["architecture"] == "rnn"  # packed sequences have no ONNX form; not a transformers model
        self.ngram = state["architecture"] == "ngram"  # n-gram ids with their TF-IDF weights
        self.formats = ("torchscript",) if rnn else ("onnx", "torchscript", "native")
        if self.ngram:
            self.inputs = ("input_ids", "attention_mask", "weights")
            self.dynamic = {key: {1: "ngrams"} for key in self.inputs}

    def graph(self, model: nn.Module) -> nn.Module:
        return _Logits(model)

    def as_model(self, forward) -> nn.Module:
        return CallModel(
            lambda input_ids, attention_mask, weights=None: SimpleNamespace(
                logits=forward(input_ids, attention_mask, *([] if weights is None else [weights]))[0]
            )
        )

    def write_files(self, folder: Path) -> list[str]:
        if self.ngram:  # the n-gram vocabularies and idf are in the copied preprocess/state.json
            return []
        hf.tokenizer_from_state(self.state["tokenizer"]).save_pretrained(folder / "tokenizer")
        return ["tokenizer/"]

    def describe(self) -> dict:
        if self.ngram:
            return {
                "input": "each text's n-gram feature ids (word 1-2-grams then char_wb 2-5-grams, in the "
                "order of preprocess/state.json baselines.tfidf_logreg.blocks) and TF-IDF weights "
                "(sublinear tf x idf, L2-normalised per block), padded with id 0 / weight 0; "
                "attention_mask 1 on real entries",
                "labels": self.state["classes"],
                "output": "logits over labels; softmax for probabilities",
            }
        return {
            "input": "texts tokenized with tokenizer/ (truncated to max_length), padded with pad_id; "
            "attention_mask 1 on real tokens",
            "max_length": self.state["max_length"],
            "pad_id": self.state["pad_id"],
            "labels": self.state["classes"],
            "output": "logits over labels; softmax for probabilities",
        }

    def save_native(self, model: nn.Module, folder: Path) -> dict:
        """The recipe's own Hugging Face save (model, tokenizer, labels) of the best weights."""
        self.recipe.save_native(model, self.state, folder)
        if self.ngram:
            return {
                "library": "torch",
                "weights": "model.safetensors",
                "load": "dlkit_recipes.nlp_sentiment.ngrams.NgramClassifier(features, len(classes), dim, 0.0)"
                ".load_state_dict(safetensors.torch.load_file('model.safetensors')); "
                "vocabularies in ngram_config.json",
            }
        return {
            "library": "transformers",
            "weights": "model.safetensors",
            "load": "AutoModelForSequenceClassification.from_pretrained('<this folder>'); "
            "AutoTokenizer.from_pretrained('<this folder>')",
        }

    def load_native(self, folder: Path, native: dict) -> nn.Module:
        from transformers import AutoModelForSequenceClassification

        if self.ngram:
            import json

            from dlkit_recipes.nlp_sentiment.ngrams import NgramClassifier
            from safetensors.torch import load_file

            layout = json.loads((folder / "ngram_config.json").read_text())
            weights = load_file(str(folder / "model.safetensors"))
            features = weights["wide.weight"].shape[0]
            model = NgramClassifier(features, len(layout["classes"]), layout["dim"], 0.0)
            model.load_state_dict(weights)
            return model.eval()
        hf.quiet()
        return AutoModelForSequenceClassification.from_pretrained(folder)
