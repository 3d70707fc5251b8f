"""The classifiers: a small BERT from scratch, a bidirectional LSTM/GRU, or a transformers checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from dlkit import hf
from dlkit.errors import UserError


class RnnClassifier(nn.Module):
    """Embedding + bidirectional LSTM/GRU, mean- and max-pooled over the real (unpadded) tokens."""

    def __init__(
        self,
        vocab_size: int,
        num_labels: int,
        hidden: int,
        layers: int,
        cell: str,
        dropout: float,
        pad_id: int,
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, hidden, padding_idx=pad_id)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(
            hidden,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(4 * hidden, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
        from transformers.modeling_outputs import SequenceClassifierOutput

        lengths = attention_mask.sum(1).clamp_min(1).cpu()  # packing needs them on the host
        packed = pack_padded_sequence(self.embed(input_ids), lengths, batch_first=True, enforce_sorted=False)
        out, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=input_ids.shape[1])
        mask = attention_mask.unsqueeze(-1).to(out.dtype)
        mean = (out * mask).sum(1) / mask.sum(1).clamp_min(1)
        peak = out.masked_fill(mask == 0, -1e4).amax(1)
        return SequenceClassifierOutput(logits=self.head(self.dropout(torch.cat([mean, peak], -1))))


def bert_config(m: dict, state: dict) -> dict:
    """The transformers config (as a dict) of bert-tiny for the fitted vocabulary and labels."""
    from transformers import BertConfig

    if m["hidden"] % m["heads"]:
        raise UserError(
            f"model.hidden={m['hidden']} is not a multiple of model.heads={m['heads']}",
            "each attention head gets hidden/heads dimensions, e.g. model.hidden=128 model.heads=2",
        )
    return BertConfig(
        vocab_size=state["vocab_size"],
        hidden_size=m["hidden"],
        num_hidden_layers=m["layers"],
        num_attention_heads=m["heads"],
        intermediate_size=2 * m["hidden"],
        hidden_act=m["activation"],
        max_position_embeddings=state["max_length"],
        hidden_dropout_prob=m["dropout"],
        attention_probs_dropout_prob=m["dropout"],
        classifier_dropout=m["dropout"],
        pad_token_id=state["pad_id"],
        num_labels=len(state["classes"]),
        id2label=dict(enumerate(state["classes"])),
        label2id={c: i for i, c in enumerate(state["classes"])},
    ).to_dict()


def build(m: dict, state: dict, init_from: str | None) -> nn.Module:
    """The architecture from state alone; a checkpoint's pretrained weights only when `init_from` names it
    (a new training run). Evaluate, predict and resume overwrite every weight from the run's checkpoint,
    so they need neither the network nor the original checkpoint folder."""
    if state["architecture"] == "ngram":
        from dlkit_recipes.nlp_sentiment.ngrams import NgramClassifier, feature_count

        features = feature_count(state["baselines"]["tfidf_logreg"])
        return NgramClassifier(features, len(state["classes"]), m["ngram_dim"], m["dropout"])
    if state["architecture"] == "rnn":
        return RnnClassifier(
            state["vocab_size"],
            len(state["classes"]),
            m["hidden"],
            m["rnn_layers"],
            m["rnn"],
            m["dropout"],
            state["pad_id"],
        )
    from transformers import AutoConfig, AutoModelForSequenceClassification

    hf.quiet()
    if init_from is None:
        return hf.from_config(AutoModelForSequenceClassification, state["hf_config"])
    config = AutoConfig.for_model(**state["hf_config"])
    return hf.from_pretrained(
        AutoModelForSequenceClassification, init_from, config=config, ignore_mismatched_sizes=True
    )


def model_inputs(batch: dict) -> dict:
    """The batch keys the model reads: ids and mask, plus the n-gram weights of model.name=ngram."""
    keys = ["input_ids", "attention_mask"] + (["weights"] if "weights" in batch else [])
    return {key: batch[key] for key in keys}


def save_native(model: nn.Module, tokenizer, m: dict, state: dict, folder: Path) -> None:
    """Model and tokenizer with save_pretrained: `AutoModelForSequenceClassification.from_pretrained(folder)`
    and `AutoTokenizer.from_pretrained(folder)` load them. The RNN is not a transformers architecture: its
    weights go to model.safetensors and its layout to rnn_config.json, beside the tokenizer."""
    if state["architecture"] == "ngram":
        _save_ngram(model, m, state, folder)
        return
    rnn = state["architecture"] == "rnn"
    hf.save_pretrained(None if rnn else model, tokenizer, folder, state["max_length"])
    if not rnn:
        return
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    layout = {
        "cell": m["rnn"],
        "hidden": m["hidden"],
        "layers": m["rnn_layers"],
        "classes": state["classes"],
        "pad_id": state["pad_id"],
    }
    (folder / "rnn_config.json").write_text(json.dumps(layout, indent=2))


def _save_ngram(model: nn.Module, m: dict, state: dict, folder: Path) -> None:
    """model.name=ngram is not a transformers architecture: weights to model.safetensors, and what turns a
    text into its bag (the n-gram vocabularies with idf, as the baseline's TF-IDF) to ngram_config.json."""
    from dlkit_recipes.nlp_sentiment.baselines import BLOCKS, blocks
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    fitted = blocks(state["baselines"]["tfidf_logreg"])
    layout = {
        "classes": state["classes"],
        "dim": m["ngram_dim"],
        "features": "sublinear tf x idf, L2-normalised per block, blocks side by side in this order",
        "blocks": {
            name: {"analyzer": BLOCKS[name][0], "ngram_range": list(BLOCKS[name][1]), **block}
            for name, block in fitted.items()
        },
    }
    (folder / "ngram_config.json").write_text(json.dumps(layout))
