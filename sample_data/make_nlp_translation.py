"""Generate the small English -> French sample set used by the nlp-translation recipe.

Sentences come from a small grammar with a fixed vocabulary (about 25 nouns, 12 adjectives, 14 verbs)
and the French rules a learner meets first: grammatical gender and number agreement of articles and
adjectives, colour adjectives after the noun and size adjectives before it, elision (l'arbre, n'aime),
verb agreement, negation around the verb (ne ... pas), prepositional phrases and numbers. Every rule is
applied consistently, so a small sequence-to-sequence model trained from scratch can learn the pair,
while test sentences are new combinations it has not seen.

A few deliberately dirty rows exercise the recipe's cleaning: exact duplicate pairs, empty sides,
misaligned pairs with an extreme length ratio, over-long pairs, pairs whose source equals the target,
and HTML left in the text.

Output: ``OUT/pairs.tsv`` with a ``source<TAB>target`` header.

Usage::

    python sample_data/make_nlp_translation.py [--out DIR] [--seed N] [--pairs N]

Only the standard library is needed; the output is deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent / "nlp_translation"
VOWELS = tuple("aeiouhéè")

# english, french singular, french plural, gender
NOUNS = [
    ("cat", "chat", "chats", "m"),
    ("dog", "chien", "chiens", "m"),
    ("bird", "oiseau", "oiseaux", "m"),
    ("horse", "cheval", "chevaux", "m"),
    ("mouse", "souris", "souris", "f"),
    ("girl", "fille", "filles", "f"),
    ("boy", "garçon", "garçons", "m"),
    ("woman", "femme", "femmes", "f"),
    ("man", "homme", "hommes", "m"),
    ("child", "enfant", "enfants", "m"),
    ("friend", "ami", "amis", "m"),
    ("teacher", "professeur", "professeurs", "m"),
    ("car", "voiture", "voitures", "f"),
    ("house", "maison", "maisons", "f"),
    ("book", "livre", "livres", "m"),
    ("apple", "pomme", "pommes", "f"),
    ("table", "table", "tables", "f"),
    ("door", "porte", "portes", "f"),
    ("tree", "arbre", "arbres", "m"),
    ("flower", "fleur", "fleurs", "f"),
    ("ball", "balle", "balles", "f"),
    ("letter", "lettre", "lettres", "f"),
    ("cake", "gâteau", "gâteaux", "m"),
    ("hat", "chapeau", "chapeaux", "m"),
]
ANIMATE = {
    "cat",
    "dog",
    "bird",
    "horse",
    "mouse",
    "girl",
    "boy",
    "woman",
    "man",
    "child",
    "friend",
    "teacher",
}
ENGLISH_PLURAL = {"mouse": "mice", "woman": "women", "man": "men", "child": "children"}

# english, (m sg, f sg, m pl, f pl): colours and states follow the noun ...
POST_ADJECTIVES = [
    ("red", ("rouge", "rouge", "rouges", "rouges")),
    ("black", ("noir", "noire", "noirs", "noires")),
    ("green", ("vert", "verte", "verts", "vertes")),
    ("white", ("blanc", "blanche", "blancs", "blanches")),
    ("blue", ("bleu", "bleue", "bleus", "bleues")),
    ("happy", ("content", "contente", "contents", "contentes")),
    ("tired", ("fatigué", "fatiguée", "fatigués", "fatiguées")),
]
# ... size and quality come before it
PRE_ADJECTIVES = [
    ("small", ("petit", "petite", "petits", "petites")),
    ("big", ("grand", "grande", "grands", "grandes")),
    ("young", ("jeune", "jeune", "jeunes", "jeunes")),
    ("pretty", ("joli", "jolie", "jolis", "jolies")),
    ("good", ("bon", "bonne", "bons", "bonnes")),
]
STATE_ADJECTIVES = (
    POST_ADJECTIVES[5:]
    + PRE_ADJECTIVES[:2]
    + [
        ("busy", ("occupé", "occupée", "occupés", "occupées")),
        ("sad", ("triste", "triste", "tristes", "tristes")),
    ]
)

# english 3sg, english base, french 3sg, french 3pl
INTRANSITIVE = [
    ("sleeps", "sleep", "dort", "dorment"),
    ("runs", "run", "court", "courent"),
    ("sings", "sing", "chante", "chantent"),
    ("walks", "walk", "marche", "marchent"),
    ("plays", "play", "joue", "jouent"),
    ("waits", "wait", "attend", "attendent"),
]
TRANSITIVE = [
    ("sees", "see", "voit", "voient"),
    ("likes", "like", "aime", "aiment"),
    ("eats", "eat", "mange", "mangent"),
    ("watches", "watch", "regarde", "regardent"),
    ("finds", "find", "trouve", "trouvent"),
    ("carries", "carry", "porte", "portent"),
    ("wants", "want", "veut", "veulent"),
    ("hears", "hear", "entend", "entendent"),
]
PLACES = [
    ("in the garden", "dans le jardin"),
    ("in the house", "dans la maison"),
    ("near the river", "près de la rivière"),
    ("under the table", "sous la table"),
    ("in the park", "dans le parc"),
    ("at school", "à l'école"),
    ("today", "aujourd'hui"),
    ("at night", "la nuit"),
    ("every morning", "chaque matin"),
]
NUMBERS = [("two", "deux"), ("three", "trois"), ("four", "quatre")]


def _article(definite: bool, gender: str, plural: bool, next_word: str) -> str:
    if plural:
        return "les" if definite else "des"
    if not definite:
        return "un" if gender == "m" else "une"
    if next_word.startswith(VOWELS):
        return "l'"
    return "le" if gender == "m" else "la"


def _join(words: list[str]) -> str:
    return " ".join(words).replace("' ", "'")


def noun_phrase(rng: random.Random, animate: bool | None = None) -> tuple[str, str, bool, str]:
    """(english, french, plural, gender) for a noun with an article, maybe a number and an adjective."""
    pool = [n for n in NOUNS if animate is None or (n[0] in ANIMATE) == animate]
    en_noun, fr_sg, fr_pl, gender = rng.choice(pool)
    plural = rng.random() < 0.35
    number = rng.choice(NUMBERS) if plural and rng.random() < 0.4 else None
    definite = number is None and rng.random() < 0.7
    form = (2 if plural else 0) + (gender == "f")
    en_words = [ENGLISH_PLURAL.get(en_noun, en_noun + "s") if plural else en_noun]
    fr_words = [fr_pl if plural else fr_sg]
    roll = rng.random()
    if roll < 0.3:
        en_adj, fr_adj = rng.choice(POST_ADJECTIVES if en_noun in ANIMATE else POST_ADJECTIVES[:5])
        en_words.insert(0, en_adj)
        fr_words.append(fr_adj[form])
    elif roll < 0.45:
        en_adj, fr_adj = rng.choice(PRE_ADJECTIVES)
        en_words.insert(0, en_adj)
        fr_words.insert(0, fr_adj[form])
    if number is not None:
        en_words.insert(0, number[0])
        fr_words.insert(0, number[1])
    else:
        en_words.insert(0, "the" if definite else ("some" if plural else "a"))
        before_adjective = plural and not definite and 0.3 <= roll < 0.45  # des -> de before an adjective
        fr_words.insert(0, "de" if before_adjective else _article(definite, gender, plural, fr_words[0]))
    return " ".join(en_words), _join(fr_words), plural, gender


def _negate(verb: str) -> list[str]:
    return ["n'" if verb.startswith(VOWELS) else "ne", verb, "pas"]


def sentence(rng: random.Random) -> tuple[str, str]:
    """One English sentence and its French translation."""
    kind = rng.random()
    en_subj, fr_subj, plural, gender = noun_phrase(rng, animate=True)
    negative = rng.random() < 0.2
    if kind < 0.25:
        en_adj, fr_adj = rng.choice(STATE_ADJECTIVES)
        en = [en_subj, "are" if plural else "is"] + (["not"] if negative else []) + [en_adj]
        verb = "sont" if plural else "est"
        form = (2 if plural else 0) + (gender == "f")
        fr = [fr_subj] + (_negate(verb) if negative else [verb]) + [fr_adj[form]]
    else:
        en_3sg, en_base, fr_3sg, fr_3pl = rng.choice(TRANSITIVE if kind < 0.7 else INTRANSITIVE)
        verb = fr_3pl if plural else fr_3sg
        if negative:
            en = [en_subj, "do not" if plural else "does not", en_base]
            fr = [fr_subj] + _negate(verb)
        else:
            en = [en_subj, en_base if plural else en_3sg]
            fr = [fr_subj, verb]
        if kind < 0.7:
            en_obj, fr_obj, _, _ = noun_phrase(rng)
            if negative and fr_obj.split()[0] in ("un", "une", "des"):  # pas de after a negation
                fr_obj = _join(["d'" if fr_obj.split()[1].startswith(VOWELS) else "de", *fr_obj.split()[1:]])
            en.append(en_obj)
            fr.append(fr_obj)
    if rng.random() < 0.35:
        en_place, fr_place = rng.choice(PLACES)
        en.append(en_place)
        fr.append(fr_place)
    en_text, fr_text = _join(en), _join(fr)
    return en_text[0].upper() + en_text[1:] + ".", fr_text[0].upper() + fr_text[1:] + "."


def dirty_rows(rng: random.Random, clean: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Rows the recipe's cleaning must catch: duplicates, empties, misaligned, over-long, copies, HTML."""
    rows = [rng.choice(clean) for _ in range(15)]  # exact duplicates
    rows += [(clean[i][0], "") for i in range(4)] + [("", clean[i][1]) for i in range(4, 7)] + [("   ", "  ")]
    for i in range(7, 11):  # misaligned: a short source against several concatenated targets
        rows.append((clean[i][0].split()[0] + ".", " ".join(t for _, t in clean[i : i + 6])))
    for i in range(11, 13):  # a whole paragraph on each side
        rows.append((" ".join(s for s, _ in clean[i : i + 40]), " ".join(t for _, t in clean[i : i + 40])))
    rows += [("OK.", "OK."), ("Paris!", "Paris!"), ("Taxi.", "Taxi.")]
    rows += [(f"<b>{s}</b>", f"<b>{t}</b>") for s, t in clean[13:15]]
    return rows


def generate(out: Path, seed: int = 0, pairs: int = 1200) -> Path:
    rng = random.Random(seed)
    seen: set[str] = set()
    clean: list[tuple[str, str]] = []
    while len(clean) < pairs:
        en, fr = sentence(rng)
        if en not in seen:
            seen.add(en)
            clean.append((en, fr))
    rows = clean + dirty_rows(rng, clean)
    rng.shuffle(rows)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "pairs.tsv"
    path.write_text("source\ttarget\n" + "".join(f"{s}\t{t}\n" for s, t in rows), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pairs", type=int, default=1200, help="distinct clean sentence pairs")
    args = parser.parse_args()
    print(generate(args.out, args.seed, args.pairs))


if __name__ == "__main__":
    main()
