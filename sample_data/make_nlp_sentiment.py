"""Generate the small synthetic sentiment sample set used by dlkit's `nlp-sentiment` recipe.

Each row is a short English review (of a film, restaurant, hotel, book, gadget or app) labelled
`positive` or `negative`. Reviews are assembled from templates with a varied vocabulary, and made
deliberately hard for a bag-of-words model:

- negation flips a word's polarity ("the plot was not good", "the staff were never rude");
- contrast puts the opposite polarity first ("the food was great, but the service was awful");
- mixed aspects and neutral filler sentences ("We went on a Tuesday.") dilute the signal;
- about 4% of labels are flipped, as in real crowd-labelled data.

Real-world mess is included too: HTML tags and entities (`<br />`, `&amp;`, `&#39;`), odd spacing,
exact duplicate rows, a few texts repeated with a conflicting label, and a few empty texts.
Classes are mildly imbalanced (about 55% positive).

Usage::

    python sample_data/make_nlp_sentiment.py [--out DIR] [--seed N] [--rows N]

Only numpy and the standard library are needed; the output is deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parent / "nlp_sentiment"

DOMAINS: dict[str, dict[str, list[str]]] = {
    "film": {
        "thing": ["film", "movie", "picture", "sequel", "documentary", "thriller", "comedy"],
        "aspect": [
            "plot",
            "acting",
            "script",
            "soundtrack",
            "ending",
            "pacing",
            "dialogue",
            "cast",
            "cinematography",
            "lead actress",
            "villain",
            "special effects",
        ],
        "filler": [
            "I watched it on a rainy Sunday.",
            "We saw the late showing.",
            "It runs just under two hours.",
            "My brother picked this one.",
            "I had read the book first.",
            "The trailer had been everywhere.",
        ],
    },
    "restaurant": {
        "thing": ["restaurant", "place", "bistro", "diner", "cafe", "pizzeria", "food truck"],
        "aspect": [
            "food",
            "service",
            "pasta",
            "staff",
            "menu",
            "dessert",
            "coffee",
            "waiter",
            "atmosphere",
            "portions",
            "soup",
            "wine list",
        ],
        "filler": [
            "We went on a Tuesday evening.",
            "It was my cousin's birthday.",
            "We had booked a table for four.",
            "Parking is on the street.",
            "I ordered the daily special.",
            "It is near the train station.",
        ],
    },
    "hotel": {
        "thing": ["hotel", "hostel", "resort", "guest house", "inn", "apartment"],
        "aspect": [
            "room",
            "bed",
            "breakfast",
            "reception",
            "pool",
            "location",
            "shower",
            "view",
            "cleaning",
            "wifi",
            "front desk",
            "bathroom",
        ],
        "filler": [
            "We stayed three nights.",
            "I was there for a conference.",
            "We arrived late at night.",
            "It was a last minute booking.",
            "Check-in is at three.",
            "We travelled with two kids.",
        ],
    },
    "book": {
        "thing": ["book", "novel", "memoir", "biography", "collection", "textbook"],
        "aspect": [
            "writing",
            "story",
            "characters",
            "prose",
            "ending",
            "translation",
            "first chapter",
            "main character",
            "humour",
            "research",
        ],
        "filler": [
            "I read it on holiday.",
            "It was a gift from a friend.",
            "It is about four hundred pages.",
            "Our book club chose it.",
            "I listened to the audio version.",
            "It is the second in a series.",
        ],
    },
    "product": {
        "thing": ["phone", "blender", "laptop", "vacuum", "kettle", "headset", "camera", "app"],
        "aspect": [
            "battery",
            "screen",
            "sound",
            "design",
            "price",
            "build quality",
            "setup",
            "customer support",
            "motor",
            "interface",
            "charger",
            "manual",
        ],
        "filler": [
            "I bought it last month.",
            "It arrived in two days.",
            "I use it every morning.",
            "It replaced my old one.",
            "My partner uses it more than I do.",
            "It came in a plain box.",
        ],
    },
}

POSITIVE = [
    "good",
    "great",
    "excellent",
    "wonderful",
    "superb",
    "lovely",
    "fantastic",
    "brilliant",
    "delightful",
    "impressive",
    "solid",
    "charming",
    "outstanding",
    "pleasant",
    "terrific",
    "amazing",
    "enjoyable",
    "memorable",
    "fresh",
    "reliable",
    "smooth",
    "generous",
]
NEGATIVE = [
    "bad",
    "awful",
    "terrible",
    "poor",
    "dull",
    "boring",
    "disappointing",
    "weak",
    "mediocre",
    "horrible",
    "bland",
    "sloppy",
    "tedious",
    "annoying",
    "cheap",
    "forgettable",
    "dreadful",
    "clumsy",
    "noisy",
    "rude",
    "broken",
    "overpriced",
]
INTENSIFIERS = ["", "", "", "really ", "very ", "quite ", "truly ", "absolutely ", "pretty ", "so "]
VERDICT_POS = [
    "I would recommend it to anyone.",
    "Two thumbs up.",
    "I will definitely come back.",
    "Worth every penny.",
    "Five stars from me.",
    "Highly recommended.",
    "I would happily do it again.",
    "A real gem.",
    "Loved it.",
]
VERDICT_NEG = [
    "I would not recommend it.",
    "Avoid.",
    "I will not be back.",
    "A waste of money.",
    "One star.",
    "Save yourself the trouble.",
    "Never again.",
    "What a letdown.",
    "I want my money back.",
]
OPENERS = ["", "", "Honestly, ", "Overall, ", "To be fair, ", "In short, ", "Well, "]


def _pick(rng: np.random.Generator, options: list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _be(aspect: str) -> str:
    return "were" if aspect.endswith("s") and not aspect.endswith("ss") else "was"


def _clause(rng: np.random.Generator, domain: dict, positive: bool) -> str:
    """One clause about an aspect whose polarity is `positive`, sometimes expressed by negation."""
    aspect = _pick(rng, domain["aspect"])
    be = _be(aspect)
    if rng.random() < 0.3:  # polarity through negation: "not good" is negative
        adj = _pick(rng, NEGATIVE if positive else POSITIVE)
        neg = (
            _pick(rng, ["not", "not", "never", "hardly", "not at all"])
            if positive
            else _pick(rng, ["not", "not", "not very", "not exactly", "far from"])
        )
        if neg == "not at all":
            return f"the {aspect} {be} not {adj} at all"
        return f"the {aspect} {be} {neg} {adj}"
    adj = _pick(rng, POSITIVE if positive else NEGATIVE)
    return f"the {aspect} {be} {_pick(rng, INTENSIFIERS)}{adj}"


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:] + "."


def review(rng: np.random.Generator, positive: bool) -> str:
    """A review whose overall label is `positive`; the last clause or verdict carries the label."""
    domain = DOMAINS[_pick(rng, list(DOMAINS))]
    thing = _pick(rng, domain["thing"])
    parts: list[str] = []
    kind = rng.random()
    if kind < 0.35:  # one or two agreeing clauses
        parts.append(_sentence(_pick(rng, OPENERS) + _clause(rng, domain, positive)))
        if rng.random() < 0.5:
            parts.append(_sentence(_clause(rng, domain, positive)))
    elif kind < 0.65:  # contrast: the opposite first, then the real verdict
        first, second = _clause(rng, domain, not positive), _clause(rng, domain, positive)
        joiner = _pick(rng, [", but ", ", but honestly ", "; however, ", ", yet "])
        if rng.random() < 0.3:
            parts.append(_sentence(f"although {first}, {second}"))
        else:
            parts.append(_sentence(first + joiner + second))
    elif kind < 0.85:  # a mixed aspect plus an overall verdict about the thing
        parts.append(_sentence(_clause(rng, domain, not positive)))
        adj = _pick(rng, POSITIVE if positive else NEGATIVE)
        parts.append(_sentence(f"still, the {thing} as a whole was {_pick(rng, INTENSIFIERS)}{adj}"))
    else:  # one clause and a verdict
        parts.append(_sentence(_clause(rng, domain, positive)))
        parts.append(_pick(rng, VERDICT_POS if positive else VERDICT_NEG))
    if rng.random() < 0.4:
        parts.insert(int(rng.integers(len(parts) + 1)), _pick(rng, domain["filler"]))
    if rng.random() < 0.25 and len(parts) > 1:
        parts.append(_pick(rng, VERDICT_POS if positive else VERDICT_NEG))
    return " ".join(parts)


def _mess_up(rng: np.random.Generator, text: str) -> str:
    """HTML line breaks and entities, doubled spaces: what scraped reviews look like."""
    r = rng.random()
    if r < 0.08:
        text = text.replace(". ", ".<br /><br />", 1)
    elif r < 0.12:
        text = f"<p>{text}</p>"
    if " and " in text or rng.random() < 0.05:
        text = text.replace(" and ", " &amp; ")
    text = text.replace("'", "&#39;") if rng.random() < 0.5 else text
    if rng.random() < 0.05:
        text = text.replace(" ", "  ", 2)
    return text


def generate(out: Path, seed: int = 0, rows: int = 1400) -> Path:
    rng = np.random.default_rng(seed)
    records: list[tuple[str, str]] = []
    seen: set[str] = set()
    while len(records) < rows:
        positive = bool(rng.random() < 0.55)
        text = review(rng, positive)
        if text in seen:
            continue
        seen.add(text)
        label = positive if rng.random() >= 0.04 else not positive
        records.append((_mess_up(rng, text), "positive" if label else "negative"))
    for i in rng.choice(len(records), size=rows // 30, replace=False):  # exact duplicate rows
        records.append(records[int(i)])
    for i in rng.choice(len(records), size=4, replace=False):  # the same text with the other label
        text, label = records[int(i)]
        records.append((text, "negative" if label == "positive" else "positive"))
    records += [("", "positive"), ("<br />", "negative"), ("   ", "positive")]  # empty after cleaning
    order = rng.permutation(len(records))
    out.mkdir(parents=True, exist_ok=True)
    path = out / "reviews.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(records[int(i)] for i in order)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", type=int, default=1400, help="distinct reviews before duplicates are added")
    args = parser.parse_args()
    path = generate(args.out, args.seed, args.rows)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
