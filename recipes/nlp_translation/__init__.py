"""nlp-translation: source/target sentence pairs -> a sequence-to-sequence model, scored with sacreBLEU.

The default works fully offline: a byte-level BPE tokenizer is trained on both sides of the training
split and a small BART (encoder-decoder) is trained from scratch. Any `AutoModelForSeq2SeqLM`
checkpoint (Marian, T5, BART, mBART...) given by hub name or local directory fine-tunes through the
same path with its own tokenizer. Training uses teacher forcing: the labels (padding as -100) go to
the model, which shifts them right into decoder inputs.

Data: one table (TSV/CSV/JSONL/Parquet, optional `split` column), split tables (train.tsv, dev.tsv,
test.tsv...) or split folders (train/, valid/, test/ each holding a table); a missing val or test split
is carved out of train at random. Pairs are cleaned (empty sides, duplicates, over-long, misaligned).

The scratch model reads a draft before the source (`model.draft`, drafts.py): the word-by-word translation
and/or the translation memory's best match, so that on a few hundred pairs it learns to edit a draft
rather than generate from nothing.

Validation (stage "val") decodes greedily by default (`generate.val_beams`), because the monitored
chrF only has to rank epochs; the final evaluation (stage "test") and `predict` use the full beam
search. The model is scored beside copying the source, a word-by-word translation with a lexicon
learned from the training pairs (IBM Model 1) and a translation memory (the target of the most similar
training source). The run is self-contained: tokenizer files, the model config, the lexicon and the
memory live in the run's state, so evaluate and predict never need the training data or the original
checkpoint folder.

Files: recipe.py (the hooks), data.py (cleaning, tables, splits, datasets, predict inputs), model.py
(tokenizer, configs, building, decoding), metrics.py (sacreBLEU as torchmetrics), baselines.py,
drafts.py (the encoder's draft).
"""

from dlkit.registry import lazy_exports

RECIPE_META = {  # what `dlkit recipes` lists, without importing torch (dlkit/registry.py)
    "name": "nlp-translation",
    "task": "machine translation",
    "description": (
        "Translate sentences with a seq2seq transformer (small BART from scratch, or a checkpoint)."
    ),
    "default_model": "bart-scratch",
    "sample_data": "sample_data/nlp_translation/pairs.tsv",
    "monitor": "chrf",  # `dlkit info`: monitored under the default config
}
__getattr__ = lazy_exports(__name__, NlpTranslation="recipe", recipe_config="config")

__all__ = ["recipe_config", "NlpTranslation"]
