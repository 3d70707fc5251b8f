"""nlp-translation's default config, light (nothing heavy imported) so that `dlkit info` reads it without
torch; `Recipe.config()` returns it. Constants it shares with the heavy modules live here.
"""

from __future__ import annotations

from dlkit.config import opt, scratch_or_finetune_lr

BLEU_TOKENIZERS = ("13a", "intl", "zh", "char", "none")
DRAFTS = ("none", "words", "memory", "both")
SCRATCH = "bart-scratch"
SCRATCH_LR, FINETUNE_LR = 1e-3, 5e-5


def recipe_config() -> dict:
    return {
        "data": {
            "batch_size": 32,
            "source_column": opt("source", "column holding the sentence to translate"),
            "target_column": opt("target", "column holding its translation"),
            "encoding": opt("utf-8", "text encoding of the data files"),
            "max_chars": opt(400, "drop pairs with a side longer than this many characters (0 = off)"),
            "max_length_ratio": opt(
                3.0,
                "drop pairs whose target/source length ratio is this many times off the corpus median "
                "(likely misaligned; 0 = off)",
            ),
            "max_length": opt(128, "tokens kept per sentence (longer ones are truncated)"),
            "max_val_pairs": opt(
                1000,
                "cap on validation pairs (translated every epoch); extra pairs of an assigned split join "
                "training, of a given one are left out (0 = no cap)",
            ),
        },
        "model": {
            "name": opt(
                SCRATCH,
                f"'{SCRATCH}' = small BART trained from scratch with a BPE tokenizer fitted on the data; "
                "or an AutoModelForSeq2SeqLM hub name or folder",
            ),
            "tokenizer_name": opt("", "tokenizer hub name or folder for a checkpoint ('' = its own)"),
            "vocab_size": opt(2000, f"subword vocabulary of the tokenizer trained for '{SCRATCH}'"),
            "layers": opt(2, f"encoder and decoder layers of '{SCRATCH}' (each)"),
            "hidden": opt(128, f"model width of '{SCRATCH}'"),
            "heads": opt(4, f"attention heads of '{SCRATCH}'"),
            "ffn": opt(512, f"feed-forward width of '{SCRATCH}'"),
            "src_lang": opt("", "source language code for checkpoints that need one (en_XX, eng_Latn)"),
            "tgt_lang": opt(
                "",
                "target language code; also forces it as the first generated token where the tokenizer "
                "knows it (mBART, NLLB, M2M100)",
            ),
            "source_prefix": opt("", "text put before every source ('translate English to French: ' for T5)"),
            # the word-by-word draft lifted test chrF on the real .po catalogues of bench/quality from
            # 32.8 to 34.5 (django-fr) and 33.8 to 39.2 (sphinx-es), sample data BLEU ~96 -> 97.8;
            # adding the memory's match ('both': 36.1 and 36.4) helped on one set and hurt on the other
            "draft": opt(
                None,
                "what the encoder reads before the source, behind a separator, to edit rather than "
                "translate from nothing: 'words' = the word-by-word translation, 'memory' = the "
                "translation memory's best match (from the other training pairs for a training pair), "
                f"'both', 'none'; null = 'words' for {SCRATCH}, 'none' to fine-tune a checkpoint",
                DRAFTS,
                type=str,
            ),
            "dropout": 0.1,
        },
        "loss": {
            "name": opt(
                "cross_entropy", "training loss (teacher-forced token cross-entropy)", ["cross_entropy"]
            ),
            "label_smoothing": 0.1,
        },
        "train": {
            # a seq2seq model from scratch needs about a thousand updates before it translates rather
            # than emitting its most frequent sentence, and a schedule planned over 2000 keeps the lr
            # up long enough to pass copying the source on real .po catalogues of ~500 pairs (chrF
            # 32.8 vs 30.5 and 33.8 vs 32.0, where 1000 steps gave 28.0 and 32.0; bench/quality);
            # patience ends it sooner once validation chrF stops rising
            "min_steps": 2000,
            "warmup": 0.1,
            "patience": 10,
            "lr": scratch_or_finetune_lr(SCRATCH, SCRATCH_LR, FINETUNE_LR),
        },
        "generate": {
            "num_beams": opt(4, "beam width for the final evaluation and predict (1 = greedy)"),
            "val_beams": opt(
                1,
                "beam width for the per-epoch validation that picks the best epoch (greedy is several "
                "times faster and ranks epochs alike)",
            ),
            "max_new_tokens": opt(
                0,
                "longest translation in tokens (0 = per batch, from its longest source and the training "
                "pairs' length ratio, at most 1.5x the longest training target)",
            ),
            "length_penalty": opt(1.0, "beam-search length penalty (>1 favours longer translations)"),
        },
        "eval": {
            "bleu_tokenize": opt(
                "13a",
                "sacreBLEU tokenizer (zh for Chinese targets, char for other unsegmented scripts)",
                BLEU_TOKENIZERS,
            ),
            "examples": opt(5, "example translations (source, reference, hypothesis) in the evaluation"),
        },
    }
