"""Generate the small shop-assistant dialogues used by the nlp-chat recipe.

A web shop's assistant answers questions about opening hours, orders, returns, delivery and payment,
and makes small talk (greetings, thanks, goodbyes). Every user request comes in many paraphrases; the
paraphrases of each request are split in two groups: the first group appears in the training
conversations, the second (held out) only in validation and test, so the test asks how well a model
answers wordings it never saw. Answers follow one template per request and repeat the details the user
gave (order numbers, products, towns), and a follow-up question ("when will it arrive?") must be
answered with the order number given two turns earlier, so a good answer needs the context, not only
the last user turn.

A few deliberately dirty conversations exercise the recipe's cleaning: an empty turn, an exact
duplicate exchange, an over-long turn and a conversation with no assistant turn.

Output (JSONL, one conversation a line: {"messages": [{"role": ..., "content": ...}, ...]}):
``OUT/train.jsonl``, ``OUT/val.jsonl``, ``OUT/test.jsonl`` and ``OUT/prompts.txt`` (example prompts for
``dlkit predict``, one a line).

Usage::

    python sample_data/make_nlp_chat.py [--out DIR] [--seed N] [--train N]

Only the standard library is needed; the output is deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent / "nlp_chat"
HELD_OUT = 2  # paraphrases per request kept for validation and test only

COLOURS = ["blue", "red", "black", "green", "grey", "white", "brown", "yellow"]
ITEMS = ["jacket", "scarf", "boots", "jumper", "rain coat", "jeans", "dress", "backpack", "watch", "hoodie"]
PRODUCTS = [f"{colour} {item}" for colour in COLOURS for item in ITEMS]
TOWNS = [
    "Leeds", "Bristol", "York", "Cardiff", "Glasgow", "Norwich", "Bath", "Exeter", "Dundee", "Oxford",
    "Durham", "Chester", "Lincoln", "Carlisle", "Inverness", "Swansea", "Brighton", "Derby", "Hull", "Perth",
    "Salisbury", "Truro", "Wells", "Stirling", "Lancaster", "Preston", "Reading", "Bangor", "Ripon", "Ely",
]  # fmt: skip
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]

# request -> (user paraphrases; the last HELD_OUT are held out, the answer template)
REQUESTS: dict[str, tuple[list[str], str]] = {
    "hours": (
        [
            "What are your opening hours?",
            "When are you open?",
            "What time do you open?",
            "Are you open on weekends?",
            "What time does the shop close?",
            "Tell me your opening times please.",
            "How late are you open today?",
            "When does the store open in the morning?",
        ],
        "We are open from 9am to 6pm on weekdays and from 10am to 4pm on Saturdays.",
    ),
    "order": (
        [
            "Where is my order {order}?",
            "Can you check order {order} for me?",
            "What is the status of order {order}?",
            "Has order {order} shipped yet?",
            "I want to track my order {order}.",
            "Any news on my order {order}?",
            "Could you tell me where order {order} is?",
            "I am still waiting for order {order}.",
        ],
        "Order {order} has left our warehouse and is on its way to you.",
    ),
    "return": (
        [
            "I want to return the {product}.",
            "How do I send back the {product}?",
            "Can I return the {product} I bought?",
            "The {product} does not fit, can I return it?",
            "I would like a refund for the {product}.",
            "Is it possible to return my {product}?",
            "The {product} is too small, how can I send it back?",
            "I need to return a {product}.",
        ],
        "Sorry the {product} did not work out. You can return it within 30 days for a full refund.",
    ),
    "delivery": (
        [
            "Do you deliver to {town}?",
            "Can you ship to {town}?",
            "How long does delivery to {town} take?",
            "Is delivery to {town} possible?",
            "Do you send parcels to {town}?",
            "Will you deliver my order to {town}?",
            "Can I get things delivered in {town}?",
            "Do you ship orders to {town}?",
        ],
        "Yes, we deliver to {town} in two to three working days.",
    ),
    "payment": (
        [
            "Which payment methods do you accept?",
            "Can I pay by card?",
            "How can I pay for my order?",
            "Do you take PayPal?",
            "What are the ways to pay?",
            "Is it possible to pay with a credit card?",
            "Which cards do you accept?",
            "How do I pay?",
        ],
        "We accept all major cards and PayPal.",
    ),
}
FOLLOW_UP = (
    [
        "When will it arrive?",
        "And when will I get it?",
        "How long until it gets here?",
        "When should I expect it?",
        "What day will it come?",
        "When will it be delivered?",
        "So when does it arrive?",
        "When is it due?",
    ],
    "Order {order} should arrive on {day}.",
)
GREETINGS = (
    ["Hi", "Hello", "Hello there", "Hi there", "Good morning", "Hey", "Good afternoon", "Hiya"],
    "Hello! How can I help you today?",
)
THANKS = (
    ["Thanks!", "Thank you", "Thanks a lot", "Great, thank you", "Cheers", "Thank you so much",
     "Perfect, thanks", "Many thanks"],
    "You are welcome! Is there anything else I can help with?",
)  # fmt: skip
BYE = (
    ["Bye", "Goodbye", "No, that is all", "That is everything, bye", "See you", "Nothing else, thanks",
     "All good, bye", "No thanks, bye"],
    "Goodbye and have a nice day!",
)  # fmt: skip


def _turn(role: str, content: str) -> dict:
    return {"role": role, "content": content}


def _ask(rng: random.Random, paraphrases: list[str], held_out: bool) -> str:
    pool = paraphrases[-HELD_OUT:] if held_out else paraphrases[:-HELD_OUT]
    return rng.choice(pool)


def conversation(rng: random.Random, held_out: bool) -> list[dict]:
    """One dialogue: maybe a greeting, one to three requests (an order maybe followed up), maybe thanks."""
    turns: list[dict] = []
    if rng.random() < 0.5:
        turns += [_turn("user", _ask(rng, GREETINGS[0], held_out)), _turn("assistant", GREETINGS[1])]
    for request in rng.sample(sorted(REQUESTS), rng.randint(1, 3)):
        paraphrases, answer = REQUESTS[request]
        slots = {
            "order": str(rng.randint(10000, 99999)),
            "product": rng.choice(PRODUCTS),
            "town": rng.choice(TOWNS),
            "day": rng.choice(DAYS),
        }
        turns += [
            _turn("user", _ask(rng, paraphrases, held_out).format(**slots)),
            _turn("assistant", answer.format(**slots)),
        ]
        if request == "order" and rng.random() < 0.6:
            turns += [
                _turn("user", _ask(rng, FOLLOW_UP[0], held_out)),
                _turn("assistant", FOLLOW_UP[1].format(**slots)),
            ]
    for closing, chance in ((THANKS, 0.5), (BYE, 0.4)):
        if rng.random() < chance:
            turns += [_turn("user", _ask(rng, closing[0], held_out)), _turn("assistant", closing[1])]
    return turns


def dirty(rng: random.Random) -> list[list[dict]]:
    """Conversations the recipe's cleaning should report: an empty turn, a duplicate exchange, an over-long
    turn, and one with no assistant turn."""
    greeting = [_turn("user", "Hi"), _turn("assistant", GREETINGS[1])]
    return [
        [_turn("user", "Hello"), _turn("assistant", "   ")],
        greeting,
        greeting,
        [_turn("user", "Tell me a story."), _turn("assistant", "Once upon a time " * 60)],
        [_turn("user", "Is anyone there?")],
    ]


def generate(out: Path = DEFAULT_OUT, seed: int = 0, train: int = 400) -> dict[str, int]:
    """Write train/val/test JSONL conversations and prompts.txt into `out`; returns counts per split."""
    rng = random.Random(seed)
    splits = {
        "train": [conversation(rng, held_out=False) for _ in range(train)] + dirty(rng),
        "val": [conversation(rng, held_out=True) for _ in range(max(10, train // 10))],
        "test": [conversation(rng, held_out=True) for _ in range(max(20, train // 5))],
    }
    out.mkdir(parents=True, exist_ok=True)
    for split, conversations in splits.items():
        lines = [json.dumps({"messages": turns}) for turns in conversations]
        (out / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    prompts = [
        "Hello",
        "When are you open?",
        "Where is my order 12345?",
        "Do you deliver to Bath?",
        "Thanks!",
    ]
    (out / "prompts.txt").write_text("\n".join(prompts) + "\n", encoding="utf-8")
    return {split: len(conversations) for split, conversations in splits.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=400, help="training conversations")
    args = parser.parse_args()
    counts = generate(args.out, args.seed, args.train)
    print(f"wrote {counts} conversations to {args.out}")


if __name__ == "__main__":
    main()
