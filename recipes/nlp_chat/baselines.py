"""Baselines: a retrieval bot (TF-IDF nearest training context -> its response) and a most-frequent-response
bot whose perplexity is the unigram perplexity of the assistant tokens.

The retrieval bot is what a chatbot without a language model does (and a strong one on repetitive
support dialogues): it answers with the response of the most similar training exchange, similarity being
the cosine of TF-IDF vectors of the last user turn plus half that of the whole context (so a follow-up
such as "when will it arrive?" finds an exchange about the same topic). Word or character n-grams,
whichever answers the validation exchanges better (chrF): character n-grams forgive inflections and typos.
Its memory (up to MAX_MEMORY training exchanges) and that choice are JSON in the run's state; the
vectorisers are refitted from them, never unpickled.

The most-frequent bot always says the most frequent training response. It also carries a unigram model
of the training responses' tokens (add-one smoothed over the vocabulary), whose perplexity on the
held-out responses is the bar a language model must clear well below.
"""

from __future__ import annotations

import math
from collections import Counter

import torch

MAX_MEMORY = 20_000
ANALYZERS = {"words": ("word", (1, 2)), "characters": ("char_wb", (2, 4))}
CONTEXT_WEIGHT = 0.5
CHUNK = 256


def _last_user(context) -> str:
    return next((text for role, text in reversed(context) if role == "user"), "")


def _whole(context) -> str:
    return " ".join(text for _, text in context)


def _index(memory: list[list[str]], analyzer: str):
    """(contexts, skip, k) -> indices of the `k` most similar memory exchanges of each context, most similar
    first, never one of the memory rows in `skip[i]` (a set per context, or None)."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    kind, ngrams = ANALYZERS[analyzer]
    fitted = []
    for column in (0, 1):  # last user turn, whole context
        vectorizer = TfidfVectorizer(analyzer=kind, ngram_range=ngrams, sublinear_tf=True)
        fitted.append((vectorizer, vectorizer.fit_transform([m[column] or " " for m in memory])))

    def nearest(contexts: list, skip: list[set[int]] | None = None, k: int = 1) -> list[list[int]]:
        found = []
        for start in range(0, len(contexts), CHUNK):  # a dense block of scores, CHUNK rows at a time
            part = contexts[start : start + CHUNK]
            texts = ([_last_user(c) for c in part], [_whole(c) for c in part])
            score = sum(
                weight * (vectorizer.transform(t) @ known.T).toarray()
                for weight, t, (vectorizer, known) in zip((1.0, CONTEXT_WEIGHT), texts, fitted, strict=True)
            )
            for row, rows in enumerate(skip[start : start + CHUNK] if skip else []):
                score[row, sorted(rows)] = -np.inf
            found += np.argsort(-score, axis=1, kind="stable")[:, :k].tolist()
        return found

    return nearest


def fit_retrieval(train: list, val: list) -> dict:
    """The memory (evenly spaced training exchanges, every `stride`-th) and the n-gram kind that answers
    `val` best (chrF). `train` and `val` hold Examples (context turns, response)."""
    from sacrebleu.metrics import CHRF

    stride = max(1, -(-len(train) // MAX_MEMORY))
    memory = [[_last_user(e.context), _whole(e.context), e.response] for e in train[::stride]]
    analyzer = "words"
    if val:
        references = [[e.response for e in val]]

        def score(name: str) -> float:
            found = _index(memory, name)([e.context for e in val])
            return CHRF().corpus_score([memory[j[0]][2] for j in found], references).score

        analyzer = max(ANALYZERS, key=score)
    return {"memory": memory, "analyzer": analyzer, "stride": stride}


class Retriever:
    """What the retrieval bot would answer, as the generator's extra input (`model.retrieve`, "retrieve and
    refine"): the response of the nearest memory exchange. Built from the state's retrieval memory, so
    training, evaluate, predict and chat all retrieve the same way."""

    def __init__(self, retrieval: dict):
        self.memory, self.stride = retrieval["memory"], retrieval["stride"]
        self.nearest = _index(self.memory, retrieval["analyzer"])

    def __call__(self, contexts: list) -> list[str]:
        return [self.memory[j[0]][2] for j in self.nearest(list(contexts))] if contexts else []

    def for_training(self, train: list, k: int, noise: float = 0.0, seed: int = 0) -> list[list[str]]:
        """For the training Examples the memory was taken from: the responses of the `k` nearest exchanges
        of OTHER conversations, as a held-out conversation finds them, so the model learns to edit what
        it is given to fit the context rather than to copy its own answer back (and, given several, to
        take the details from the turns rather than from any one of them).

        A training exchange's neighbours nearly always answer the same request (its wording recurs in
        other conversations); a new wording's often does not. So a `noise` share of the hints is the
        response of a random exchange of another conversation (seeded): the model learns to check the
        hint against the conversation instead of trusting it."""
        import random

        own: dict[int, set[int]] = {}
        for row, example in enumerate(train[:: self.stride]):
            own.setdefault(example.conversation, set()).add(row)
        skip = [own.get(e.conversation, set()) for e in train]
        found = self.nearest([e.context for e in train], skip, k)
        rng = random.Random(seed)
        hints = []
        for rows, mine in zip(found, skip, strict=True):
            for n in range(len(rows)):
                if rng.random() < noise:
                    other = rng.randrange(len(self.memory))
                    rows[n] = rows[n] if other in mine else other
            hints.append([self.memory[j][2] for j in rows])
        return hints


def fit_unigram(train_items: list[dict], responses: list[str], vocab_size: int) -> dict:
    """Token counts of the training responses (as the model sees them) and the most frequent response."""
    counts = Counter(t for item in train_items for t in item["labels"] if t != -100)
    top = Counter(responses).most_common(1)[0][0]
    return {"counts": {str(t): n for t, n in sorted(counts.items())}, "vocab": vocab_size, "response": top}


def unigram_nll(unigram: dict, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per response: summed negative log-likelihood of its tokens under the unigram, and its token count."""
    counts, vocab = unigram["counts"], unigram["vocab"]
    total = sum(counts.values()) + vocab
    nll, tokens = [], []
    for row in labels.tolist():
        ids = [t for t in row if t != -100]
        nll.append(-sum(math.log((counts.get(str(t), 0) + 1) / total) for t in ids))
        tokens.append(len(ids))
    return torch.tensor(nll, dtype=torch.float64), torch.tensor(tokens, dtype=torch.float64)


def predictors(state: dict) -> dict:
    """Named baseline predictors over collated batches (which carry 'context', 'response' and 'labels')."""
    retrieval, unigram = state["baselines"]["retrieval"], state["baselines"]["unigram"]
    retrieve = Retriever(retrieval)

    def retrieval_bot(batch: dict) -> dict:
        texts = retrieve(batch["context"])
        return {"preds": {"texts": texts}, "target": list(batch["response"])}

    def most_frequent(batch: dict) -> dict:
        nll, tokens = unigram_nll(unigram, batch["labels"])
        texts = [unigram["response"]] * len(batch["response"])
        return {"preds": {"texts": texts, "nll": nll, "tokens": tokens}, "target": list(batch["response"])}

    return {"retrieval": retrieval_bot, "most_frequent": most_frequent}
