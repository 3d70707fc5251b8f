"""Baselines: copy the source, and word-by-word translation with a lexicon learned from the training pairs.

The lexicon is IBM Model 1 (Brown et al., 1993): a few rounds of expectation-maximisation over which
source word each target word aligns to, starting from co-occurrence; each source word then maps to its
most probable target word. Translation replaces every source word by its entry (unknown words, e.g.
names and numbers, are copied), keeps the source's word order and capitalises like the source. It
knows words but no grammar (agreement, word order, `ne ... pas`), which is what the model adds.
The lexicon goes into the run's state as JSON, so `dlkit evaluate` uses it without the training data.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict

MAX_PAIRS = 5_000  # training pairs the lexicon is learned from (keeps fitting to seconds)
MAX_WORDS = 20_000  # the most frequent source words kept in the lexicon (bounds state.json)
ITERATIONS = 5
NULL = ""  # the empty source word, which target words with no counterpart align to
_WORD = re.compile(r"\w+|[^\w\s]")
_NO_SPACE_BEFORE = set(".,;:!?)]}%…'’")
_NO_SPACE_AFTER = set("([{'’¿¡")


def words(text: str) -> list[str]:
    """Lowercased words and punctuation marks: "L'homme." -> ["l", "'", "homme", "."]."""
    return _WORD.findall(text.lower())


def detokenize(tokens: list[str]) -> str:
    out = ""
    for token in tokens:
        if out and token not in _NO_SPACE_BEFORE and out[-1] not in _NO_SPACE_AFTER:
            out += " "
        out += token
    return out


def _ibm1(corpus: list[tuple[list[str], list[str]]]) -> dict[tuple[str, str], float]:
    """t(target word | source word) after ITERATIONS rounds of EM (IBM Model 1), from uniform."""
    prob: dict[tuple[str, str], float] = defaultdict(lambda: 1.0)
    for _ in range(ITERATIONS):
        counts: dict[tuple[str, str], float] = defaultdict(float)
        totals: dict[str, float] = defaultdict(float)
        for source, target in corpus:
            candidates = [*source, NULL]
            for f in target:
                weights = [prob[(f, e)] for e in candidates]
                norm = sum(weights)
                for e, w in zip(candidates, weights, strict=True):
                    counts[(f, e)] += w / norm
                    totals[e] += w / norm
        prob = defaultdict(float, {(f, e): c / totals[e] for (f, e), c in counts.items()})
    return prob


def fit_lexicon(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Source word -> target word, from IBM Model 1 fitted both ways on (up to MAX_PAIRS) pairs: the target
    word f maximising t(f | e) * t(e | f), so a frequent word such as '.' that co-occurs with every 'the'
    does not become its translation."""
    corpus = [(words(s), words(t)) for s, t in pairs[:MAX_PAIRS]]
    corpus = [(s, t) for s, t in corpus if s and t]
    frequency = Counter(w for s, _ in corpus for w in s)
    keep = {w for w, _ in frequency.most_common(MAX_WORDS)}
    forward = _ibm1(corpus)
    backward = _ibm1([(t, s) for s, t in corpus])
    best: dict[str, tuple[float, str]] = {}
    for (f, e), p in forward.items():
        score = p * backward.get((e, f), 0.0)
        if e != NULL and e in keep and score > best.get(e, (0.0, ""))[0]:
            best[e] = (score, f)
    return {e: f for e, (_, f) in sorted(best.items())}


def translate_words(lexicon: dict[str, str], source: str) -> str:
    """Each word through the lexicon (unknown ones copied), in the source's order, capitalised like it."""
    if not source:
        return ""
    raw = _WORD.findall(source)
    out = detokenize([lexicon.get(w.lower(), w) for w in raw])
    if out and source[:1].isupper():
        out = out[:1].upper() + out[1:]
    return out


def predictors(state: dict) -> dict:
    """Named baseline predictors over collated batches (which carry the 'source' and 'target' texts)."""
    lexicon = state["baselines"]["lexicon"]

    def copy_source(batch: dict) -> dict:
        return {"preds": list(batch["source"]), "target": list(batch["target"])}

    def word_by_word(batch: dict) -> dict:
        return {
            "preds": [translate_words(lexicon, s) for s in batch["source"]],
            "target": list(batch["target"]),
        }

    return {"copy_source": copy_source, "word_by_word": word_by_word}
