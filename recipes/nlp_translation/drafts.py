"""Drafts: what the encoder reads beside the source, behind a separator ("retrieve and refine").

On a few hundred UI strings a small model from scratch has too little data to learn a language, but the
classical baselines already get most words right: the word-by-word translation (IBM Model 1 lexicon) and
the translation memory's best match (the target of the most similar training source). Giving the
encoder `draft [SEP] source` lets the model learn to edit a good draft (fix agreement, word order,
placeholders) instead of generating from nothing (Weston et al. 2018; Gu et al. 2018; Bulté & Tezcan
2019, "Neural Fuzzy Repair"; Xu et al. 2020).

A training pair's memory draft comes from the OTHER training pairs, never from itself: otherwise the
model learns to copy the answer and, at test time, copies a worse match. The drafts are built from the
lexicon and memory kept in the run's state, so evaluate, predict and the export rebuild the same input.
"""

from __future__ import annotations

from collections.abc import Callable

from dlkit_recipes.nlp_translation.baselines import memory_index, translate_words

from dlkit import hf

Drafter = Callable[[list[str], list[str] | None], list[str]]


def drafter(state: dict, kind: str) -> Drafter | None:
    """(sources, their targets or None) -> one draft per source, for `model.draft` = `kind`; None when
    drafts are off. With targets, a pair that is itself in the memory is matched against the others."""
    if kind == "none":
        return None
    lexicon = state["baselines"]["lexicon"]
    pairs = state["baselines"]["memory"]["pairs"]
    nearest = memory_index([s for s, _ in pairs]) if pairs else None
    own = {(s, t): j for j, (s, t) in enumerate(pairs)}

    def recall(sources: list[str], targets: list[str] | None) -> list[str]:
        if nearest is None or not sources:
            return ["" for _ in sources]
        exclude = [own.get(pair) for pair in zip(sources, targets, strict=True)] if targets else None
        best, _ = nearest(sources, exclude)
        return [pairs[j][1] for j in best]

    def drafts(sources: list[str], targets: list[str] | None = None) -> list[str]:
        parts = []
        if kind in ("words", "both"):
            parts.append([translate_words(lexicon, s) for s in sources])
        if kind in ("memory", "both"):
            parts.append(recall(sources, targets))
        sep = f" {hf.SPECIAL['sep_token']} "
        return [sep.join(texts) for texts in zip(*parts, strict=True)]

    return drafts
