"""Corpus BLEU and chrF computed by sacreBLEU, as torchmetrics Metrics; signatures and example translations.

Corpus BLEU is not an average of sentence scores, so the metric keeps every hypothesis and reference
and scores them together in `compute` with sacreBLEU itself (`corpus_score`): the numbers are exactly
sacreBLEU's, and its signature says how they were computed. The texts are kept as UTF-8 bytes in a
list of uint8 tensors (`dist_reduce_fx="cat"`), so the metric syncs under DDP like any other.

torchmetrics' own SacreBLEUScore and CHRFScore were not used: SacreBLEUScore has no exponential
smoothing (sacreBLEU's default; copying the source scores 0.0 there, 0.34 in sacreBLEU) and CHRFScore
differs from sacreBLEU's chrF (12.11 vs 12.07 for copying the source of the sample data), so neither
would match the signature reported beside it.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

_UNIT, _RECORD = 0x1F, 0x1E  # separators between hypothesis and reference, and between pairs


def _scorer(kind: str, tokenize: str):
    from sacrebleu.metrics import BLEU, CHRF

    # force: the warning about tokenized references would repeat every epoch; load_data notes it once
    return BLEU(tokenize=tokenize, force=True) if kind == "bleu" else CHRF()


def _clean(text: str) -> str:
    return text.replace(chr(_UNIT), " ").replace(chr(_RECORD), " ")


class SacreScore(Metric):
    """sacreBLEU's corpus BLEU or chrF (0-100) over everything `update` saw: (hypotheses, references)."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, kind: str, tokenize: str = "13a", **kwargs):
        super().__init__(**kwargs)
        if kind not in ("bleu", "chrf"):
            raise ValueError(f"unknown sacreBLEU metric {kind!r}")
        self.kind, self.tokenize = kind, tokenize
        self.add_state("texts", default=[], dist_reduce_fx="cat")

    def update(self, preds: list[str], target: list[str]) -> None:
        if len(preds) != len(target):
            raise ValueError(f"{len(preds)} hypotheses for {len(target)} references")
        if not preds:
            return
        unit, record = chr(_UNIT), chr(_RECORD)
        packed = "".join(f"{_clean(h)}{unit}{_clean(r)}{record}" for h, r in zip(preds, target, strict=True))
        data = torch.frombuffer(bytearray(packed.encode("utf-8")), dtype=torch.uint8)
        self.texts.append(data.to(self.device))

    def pairs(self) -> list[tuple[str, str]]:
        """(hypothesis, reference) pairs in the order seen (this process's, or all after a sync)."""
        if isinstance(self.texts, list) and not self.texts:
            return []
        data = dim_zero_cat(self.texts).to(device="cpu", dtype=torch.uint8)
        records = data.numpy().tobytes().decode("utf-8").split(chr(_RECORD))
        return [tuple(r.split(chr(_UNIT), 1)) for r in records if r]

    def compute(self) -> torch.Tensor:
        pairs = self.pairs()
        if not pairs:
            return torch.tensor(0.0, dtype=torch.float64)
        hypotheses = [h for h, _ in pairs]
        references = [r for _, r in pairs]
        score = _scorer(self.kind, self.tokenize).corpus_score(hypotheses, [references]).score
        return torch.tensor(score, dtype=torch.float64)


def translation_metrics(tokenize: str) -> dict[str, SacreScore]:
    return {"bleu": SacreScore("bleu", tokenize), "chrf": SacreScore("chrf", tokenize)}


def signatures(tokenize: str) -> dict[str, str]:
    """What the scores mean (tokenizer, smoothing, version...), reported beside them; one reference each."""
    out = {}
    for kind in ("bleu", "chrf"):
        scorer = _scorer(kind, tokenize)
        scorer.corpus_score(["x"], [["x"]])  # sacreBLEU knows the reference count only after scoring
        out[kind] = scorer.get_signature().format()
    return out


def pick_examples(metric: SacreScore, sources: dict[str, str], wanted: int) -> list[dict]:
    """Evenly spaced (source, reference, hypothesis) examples from a metric's kept texts; the source is
    found by its reference (`sources`: reference -> source, from the test set)."""
    pairs = metric.pairs()
    if not pairs or wanted <= 0:
        return []
    stride = max(1, len(pairs) // wanted)
    return [
        {"source": sources.get(ref, ""), "reference": ref, "hypothesis": hyp}
        for hyp, ref in pairs[::stride][:wanted]
    ]
