"""Baselines: copy the source, word-by-word translation with a lexicon learned from the training pairs, and
a translation memory.

The lexicon is IBM Model 1 (Brown et al., 1993): a few rounds of expectation-maximisation over which
source word each target word aligns to, starting from co-occurrence; each source word then maps to its
most probable target word. Translation replaces every source word by its entry (unknown words, e.g.
names and numbers, are copied), keeps the source's word order and capitalises like the source. It
knows words but no grammar (agreement, word order, `ne ... pas`), which is what the model adds.
The lexicon goes into the run's state as JSON, so `dlkit evaluate` uses it without the training data.

The translation memory is what a translator's tool does first (and the strong baseline on repetitive
text such as UI strings): for each source, the target of the most similar training source, by cosine
of character 2-4-gram TF-IDF vectors (robust to inflection, placeholders and small edits); a source
whose best match is not similar enough (the threshold is picked on the validation pairs) is copied, as
names, codes and placeholders often stay as they are. The memory is the training pairs themselves,
kept in the state as JSON (up to MAX_MEMORY of them) with the threshold; the vectoriser is refitted
from them, never unpickled.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict

MAX_PAIRS = 5_000  # training pairs the lexicon is learned from (keeps fitting to seconds)
MAX_WORDS = 20_000  # the most frequent source words kept in the lexicon (bounds state.json)
ITERATIONS = 5
MAX_MEMORY = 20_000  # training pairs the translation memory keeps (bounds state.json to a few MB)
BLOCK = 1_000  # queries scored against the memory at a time
MATCH_THRESHOLDS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # cosine fuzzy-match thresholds tried
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


def memory_index(sources: list[str]):
    """Character 2-4-gram TF-IDF of the memory's sources, and a function: sources -> (best index, cosine).

    `exclude` gives, per query, a memory index it may not match (its own entry, when the query is a
    memory pair: a draft for a training pair must come from the other pairs). Queries are scored in
    blocks so the dense similarity matrix stays small on large memories."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)
    known = vectorizer.fit_transform(sources)

    def nearest(queries: list[str], exclude: list[int | None] | None = None) -> tuple[list[int], list[float]]:
        best_all: list[int] = []
        score_all: list[float] = []
        for start in range(0, len(queries), BLOCK):
            block = queries[start : start + BLOCK]
            similarity = (vectorizer.transform(block) @ known.T).toarray()
            for row, j in enumerate((exclude or [])[start : start + BLOCK]):
                if j is not None:
                    similarity[row, j] = -1.0
            best = similarity.argmax(axis=1)
            best_all += best.tolist()
            score_all += similarity[range(len(block)), best].tolist()
        return best_all, score_all

    return nearest


def _recall(memory: list[list[str]], nearest, sources: list[str], threshold: float) -> list[str]:
    if not memory or not sources:
        return list(sources)
    best, similarity = nearest(sources)
    return [
        memory[j][1] if sim > threshold else s for s, j, sim in zip(sources, best, similarity, strict=True)
    ]


def fit_memory(train: list[tuple[str, str]], val: list[tuple[str, str]]) -> dict:
    """The memory (up to MAX_MEMORY training pairs, evenly spaced) and its fuzzy-match threshold: the
    similarity below which a source is copied rather than recalled, the one of MATCH_THRESHOLDS that
    scores best (chrF) on the validation pairs, as a translator sets it for the text at hand."""
    from sacrebleu.metrics import CHRF

    stride = max(1, -(-len(train) // MAX_MEMORY))
    memory = [[s, t] for s, t in train[::stride]]
    threshold = 0.0
    if memory and val:
        nearest = memory_index([s for s, _ in memory])
        sources, references = [s for s, _ in val], [[t for _, t in val]]
        chrf = CHRF()
        scores = {
            t: chrf.corpus_score(_recall(memory, nearest, sources, t), references).score
            for t in MATCH_THRESHOLDS
        }
        threshold = max(MATCH_THRESHOLDS, key=lambda t: (scores[t], -t))
    return {"pairs": memory, "threshold": threshold}


def memory_lookup(memory: dict):
    """sources -> the target of each one's most similar memory source, or the source itself when that
    similarity is not above the fitted threshold."""
    pairs = memory["pairs"]
    nearest = memory_index([s for s, _ in pairs]) if pairs else None
    return lambda sources: _recall(pairs, nearest, sources, memory["threshold"])


def predictors(state: dict) -> dict:
    """Named baseline predictors over collated batches (which carry the 'source' and 'target' texts)."""
    lexicon = state["baselines"]["lexicon"]
    lookup = memory_lookup(state["baselines"]["memory"])

    def copy_source(batch: dict) -> dict:
        return {"preds": list(batch["source"]), "target": list(batch["target"])}

    def word_by_word(batch: dict) -> dict:
        return {
            "preds": [translate_words(lexicon, s) for s in batch["source"]],
            "target": list(batch["target"]),
        }

    def translation_memory(batch: dict) -> dict:
        return {"preds": lookup(list(batch["source"])), "target": list(batch["target"])}

    return {
        "copy_source": copy_source,
        "word_by_word": word_by_word,
        "translation_memory": translation_memory,
    }
