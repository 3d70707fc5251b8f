"""Dialogue metrics as torchmetrics Metrics, all fed the same (preds, target): preds a dict with the
generated `texts` and, from models that assign probabilities, each response's summed negative
log-likelihood `nll` and token count `tokens`; target the reference responses.

- perplexity: exp(total NLL / total tokens) over the held-out assistant tokens (end of turn included).
  A predictor that assigns no probabilities (the retrieval bot) gets NaN.
- chrF and BLEU: sacreBLEU's corpus scores of the generated responses against the references (the
  nlp-translation recipe's metric, which keeps the texts so it syncs under DDP).
- distinct-1/2: distinct word n-grams over all n-grams generated (diversity; a bot that always says the
  same thing scores near 0).
- degenerate: the share of responses that are empty or stuck in a loop (a word n-gram of up to 4 words
  repeated 3+ times in a row).
"""

from __future__ import annotations

import torch
from dlkit_recipes.nlp_translation.config import BLEU_TOKENIZERS
from dlkit_recipes.nlp_translation.metrics import SacreScore
from torchmetrics import Metric

__all__ = ["BLEU_TOKENIZERS", "chat_metrics", "is_degenerate"]


class ResponseScore(SacreScore):
    """sacreBLEU's chrF or BLEU over the generated texts."""

    def update(self, preds: dict, target: list[str]) -> None:
        super().update(list(preds["texts"]), list(target))


class Distinct(ResponseScore):
    """distinct-n: distinct word n-grams / all word n-grams of the generated responses (0-1)."""

    def __init__(self, n: int, **kwargs):
        super().__init__("chrf", **kwargs)  # keeps the texts as the sacreBLEU metrics do; scored below
        self.n = n

    def compute(self) -> torch.Tensor:
        grams = [
            tuple(words[i : i + self.n])
            for hypothesis, _ in self.pairs()
            for words in [hypothesis.lower().split()]
            for i in range(len(words) - self.n + 1)
        ]
        return torch.tensor(len(set(grams)) / len(grams) if grams else 0.0, dtype=torch.float64)


def is_degenerate(text: str, longest: int = 4, times: int = 3) -> bool:
    """Empty, or some run of 1..`longest` words repeated `times` or more times in a row."""
    words = text.lower().split()
    if not words:
        return True
    for n in range(1, longest + 1):
        for start in range(len(words) - n * times + 1):
            gram = words[start : start + n]
            if all(words[start + k * n : start + (k + 1) * n] == gram for k in range(1, times)):
                return True
    return False


class Degenerate(Metric):
    """The share of empty or looping responses."""

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("bad", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, preds: dict, target: list[str]) -> None:
        self.bad += sum(is_degenerate(t) for t in preds["texts"])
        self.total += len(preds["texts"])

    def compute(self) -> torch.Tensor:
        return self.bad / self.total if self.total else torch.tensor(0.0, dtype=torch.float64)


class Perplexity(Metric):
    """exp(mean NLL per response token) over everything seen; NaN when no probabilities were given."""

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("nll", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("tokens", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, preds: dict, target: list[str]) -> None:
        if "nll" in preds:
            self.nll += preds["nll"].double().sum().to(self.nll.device)
            self.tokens += preds["tokens"].double().sum().to(self.tokens.device)

    def compute(self) -> torch.Tensor:
        if not self.tokens:
            return torch.tensor(float("nan"), dtype=torch.float64)
        return torch.exp(self.nll / self.tokens)


def chat_metrics(tokenize: str) -> dict[str, Metric]:
    return {
        "chrf": ResponseScore("chrf", tokenize),
        "bleu": ResponseScore("bleu", tokenize),
        "perplexity": Perplexity(),
        "distinct_1": Distinct(1),
        "distinct_2": Distinct(2),
        "degenerate": Degenerate(),
    }
