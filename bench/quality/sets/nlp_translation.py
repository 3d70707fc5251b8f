"""nlp-translation on real UI-string catalogues: gettext .po files that Python packages ship.

- `django-fr`: every French catalogue of Django (the core's and each contrib app's `django.po`),
  English -> French, ~790 pairs: form errors, admin screens, dates, units.
- `sphinx-es`: Sphinx's Spanish catalogue (`sphinx/locale/es/LC_MESSAGES/sphinx.po`), English ->
  Spanish, ~680 pairs: build messages, warnings, HTML theme labels.

Entries kept: a non-empty msgid with a non-empty msgstr, not fuzzy, not plural (plural forms would
give one English text two targets). Exact duplicate pairs across files are kept once, before the split,
so none sits in two splits. Split: a fixed pseudo-random 65/15/20 train/val/test (`assign_splits`),
written as one JSONL table with a `split` column (JSONL because msgstr may hold tabs and newlines).

The metric is chrF (sacreBLEU), the one the recipe monitors: on a few hundred short strings corpus BLEU
is often 0 for every model in the first epochs and too coarse to rank them.

Hand-written peer: what MEASURED.md describes — a byte-level BPE (2k, both sides) and a BART with
2+2 layers of width 128 from scratch, AdamW 1e-3 with warmup, label smoothing 0.1, 50 epochs, the
epoch with the best greedy validation chrF kept, test decoded with beam 4.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from common import QualitySet, assign_splits

_LINE = re.compile(r"(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+(\".*\")$")


def parse_po(path: Path) -> list[tuple[str, str]]:
    """(msgid, msgstr) pairs of a .po file, skipping the header, fuzzy, plural and untranslated entries."""
    pairs: list[tuple[str, str]] = []
    entry: dict[str, str] = {}
    key, fuzzy = None, False
    for raw in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        line = raw.strip()
        if not line or (line.startswith("msgid ") and "msgid" in entry):
            if entry.get("msgid") and entry.get("msgstr") and "msgid_plural" not in entry and not fuzzy:
                pairs.append((entry["msgid"], entry["msgstr"]))
            entry, key, fuzzy = {}, None, False
            if not line:
                continue
        if line.startswith("#"):
            fuzzy = fuzzy or (line.startswith("#,") and "fuzzy" in line)
        elif match := _LINE.match(line):
            key = match.group(1)
            entry[key] = ast.literal_eval(match.group(2))
        elif line.startswith('"') and key:
            entry[key] += ast.literal_eval(line)
    return pairs


def _write(files: list[Path], dest: Path) -> Path:
    seen: set[tuple[str, str]] = set()
    pairs = []
    for path in sorted(files):
        for pair in parse_po(path):
            if pair not in seen:
                seen.add(pair)
                pairs.append(pair)
    out = dest / "pairs.jsonl"
    with out.open("w", encoding="utf-8") as f:
        for (source, target), split in zip(pairs, assign_splits(len(pairs)), strict=True):
            f.write(
                json.dumps({"source": source, "target": target, "split": split}, ensure_ascii=False) + "\n"
            )
    return out


def prepare_django(dest: Path) -> Path:
    import django

    root = Path(django.__file__).parent
    return _write(list(root.glob("**/locale/fr/LC_MESSAGES/django.po")), dest)


def prepare_sphinx(dest: Path) -> Path:
    import sphinx

    return _write([Path(sphinx.__file__).parent / "locale/es/LC_MESSAGES/sphinx.po"], dest)


def handwritten(data: Path, seed: int) -> float:
    import random

    import sacrebleu
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import BartConfig, BartForConditionalGeneration, get_linear_schedule_with_warmup

    torch.manual_seed(seed)
    random.seed(seed)
    rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()]
    split = {
        s: [(r["source"], r["target"]) for r in rows if r["split"] == s] for s in ("train", "val", "test")
    }
    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator(
        [t for p in split["train"] for t in p], vocab_size=2000, special_tokens=["<pad>", "<s>", "</s>"]
    )
    pad, bos, eos = (tok.token_to_id(t) for t in ("<pad>", "<s>", "</s>"))

    def ids(text):
        return tok.encode(text).ids[:126] + [eos]

    def batch(texts):
        seqs = [torch.tensor(ids(t)) for t in texts]
        return torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_value=pad)

    config = BartConfig(
        vocab_size=tok.get_vocab_size(),
        d_model=128,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=512,
        decoder_ffn_dim=512,
        max_position_embeddings=128,
        pad_token_id=pad,
        bos_token_id=bos,
        eos_token_id=eos,
        decoder_start_token_id=bos,
        forced_eos_token_id=None,
    )
    model = BartForConditionalGeneration(config)
    epochs, bs, train = 50, 32, split["train"]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    steps = epochs * ((len(train) + bs - 1) // bs)
    sched = get_linear_schedule_with_warmup(opt, int(0.1 * steps), steps)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-100, label_smoothing=0.1)

    def translate(pairs, beams):
        model.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(pairs), 64):
                x = batch([s for s, _ in pairs[i : i + 64]])
                gen = model.generate(
                    input_ids=x, attention_mask=x != pad, num_beams=beams, max_new_tokens=128
                )
                out += [tok.decode([t for t in g.tolist() if t not in (pad, bos, eos)]).strip() for g in gen]
        return sacrebleu.corpus_chrf(out, [[t for _, t in pairs]]).score

    best, best_state = -1.0, None
    for _ in range(epochs):
        model.train()
        random.shuffle(train)
        for i in range(0, len(train), bs):
            x, y = batch([s for s, _ in train[i : i + bs]]), batch([t for _, t in train[i : i + bs]])
            y[y == pad] = -100
            logits = model(input_ids=x, attention_mask=x != pad, labels=y).logits
            loss = loss_fn(logits.flatten(0, 1), y.flatten())
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
        score = translate(split["val"], 1)
        if score > best:
            best, best_state = score, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return translate(split["test"], 4)


SETS = [
    QualitySet(
        name="django-fr",
        recipe="nlp-translation",
        source="Django (PyPI django): django/**/locale/fr/LC_MESSAGES/django.po",
        metric="chrf",
        mode="max",
        prepare=prepare_django,
        handwritten=handwritten,
    ),
    QualitySet(
        name="sphinx-es",
        recipe="nlp-translation",
        source="Sphinx (PyPI sphinx): sphinx/locale/es/LC_MESSAGES/sphinx.po",
        metric="chrf",
        mode="max",
        prepare=prepare_sphinx,
        handwritten=handwritten,
    ),
]
