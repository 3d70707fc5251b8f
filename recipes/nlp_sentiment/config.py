"""nlp-sentiment's default config (`Recipe.config()` returns it), light: nothing heavy is imported, so
`dlkit info` reads it without torch. Constants it shares with the heavy modules live here.
"""

from __future__ import annotations

from dlkit.config import opt

NGRAM_LR = 1e-2  # train.lr=null for model.name=ngram: the bags learn in a few hundred steps
SCRATCH_LR, FINETUNE_LR = 1e-3, 5e-5


def recipe_config() -> dict:
    return {
        "data": {
            "batch_size": 32,
            "text_column": opt("text", "column holding the texts"),
            "label_column": opt("label", "column holding the labels (two or more classes)"),
            "encoding": opt("utf-8", "text encoding of CSV/TSV/JSONL/.txt files, e.g. latin-1 or cp1252"),
            "max_length": opt(128, "tokens kept per text (longer ones are truncated)"),
        },
        "model": {
            "name": opt(
                "ngram",
                "ngram (wide-and-deep bag of TF-IDF word and character n-grams), bert-tiny (small BERT "
                "from scratch), rnn (bidirectional LSTM/GRU from scratch), or a transformers checkpoint "
                "to fine-tune: a local folder, or a hub name in the local cache",
            ),
            "ngram_dim": opt(16, "size of model.name=ngram's dense n-gram embeddings (its deep part)"),
            # from scratch on a few thousand texts the model memorises its training set within a
            # few epochs (train loss 0.02, validation falling): dropout on every layer and a
            # stronger weight decay slow that down (validation loss 0.60 instead of 0.66 after two
            # epochs on 3.9k real review snippets, bench/quality)
            "dropout": opt(
                0.3,
                "dropout before the classifier (and in bert-tiny's embeddings, attention, hidden layers)",
            ),
            "activation": "gelu",
            "tokenizer": opt(
                "wordpiece",
                "subword tokenizer trained on the training texts (bert-tiny, rnn)",
                ["wordpiece", "bpe"],
            ),
            "vocab_size": opt(
                "auto",
                "largest vocabulary of the trained tokenizer; auto = one token per 32 words of "
                "training text, between 1000 and 8000 (a small corpus cannot train many embeddings)",
                type=int,
                auto=True,
            ),
            "lowercase": opt(True, "lowercase texts in the trained tokenizer"),
            "layers": opt(2, "encoder layers of bert-tiny"),
            "hidden": opt(128, "hidden size of bert-tiny (feed-forward 2x), or embedding/RNN size of rnn"),
            "heads": opt(2, "attention heads of bert-tiny"),
            "rnn": opt("lstm", "recurrent cell of model.name=rnn", ["lstm", "gru"]),
            "rnn_layers": opt(1, "stacked bidirectional layers of model.name=rnn"),
        },
        "loss": {
            "name": opt("cross_entropy", "training loss", ["cross_entropy", "focal"]),
            "class_weights": opt(
                "none",
                "weight the loss by class: balanced = inverse class frequency (for imbalanced data); "
                "the logistic-regression baseline is balanced the same way",
                ["none", "balanced"],
            ),
        },
        "train": {
            "weight_decay": 0.1,
            # trained from scratch, validation accuracy peaked after 100-370 steps on 0.7k-3.9k real
            # texts and fell after: fewer steps than the shared default (the cosine schedule then
            # anneals by the peak), and the best checkpoint is kept
            "min_steps": 300,
            "lr": opt(
                None,
                f"peak learning rate; null = {NGRAM_LR} for ngram, {SCRATCH_LR} for bert-tiny/rnn "
                f"trained from scratch, {FINETUNE_LR} to fine-tune a checkpoint",
                type=float,
            ),
            "warmup": 0.1,
            "patience": 3,
        },
    }
