"""tabular-fraud's default config (`Recipe.config()` returns it), light: nothing heavy is imported, so
`dlkit info` reads it without torch. Constants it shares with the heavy modules live here.
"""

from __future__ import annotations

from dlkit.config import opt
from dlkit.data.clean_options import CLEAN_OPTIONS

LOSSES = ("cross_entropy", "focal")
STREAM_BINS = 2**15 + 1  # score bins of the ranking metrics on streamed tables (binned.py)
ENSEMBLE, ENSEMBLE_ROWS = 5, 2000  # model.ensemble=auto: members below this many training rows


def recipe_config() -> dict:
    return {
        "data": {
            "batch_size": opt(
                "auto",
                "rows per step; auto = training rows / 16 as a power of two, 32 to 256",
                type=int,
                auto=True,
            ),
            "label": opt("is_fraud", "label column; two values (fraud or not)"),
            "positive": opt(
                None, "label value meaning fraud (null: 1/true/yes/fraud, else the rarer value)", type=str
            ),
            "split_column": opt(
                "split",
                "column naming each row's split (train; val, valid, validation or dev; test; empty = "
                "assigned), used when present",
            ),
            "encoding": opt("utf-8", "text encoding of CSV files"),
            "stream_above": opt(
                "auto",
                "MB of table files above which training streams them in chunks instead of loading "
                "them (auto = 1/30 of the free memory; 0 = always stream)",
                type=float,
                auto=True,
            ),
            "stream_sample": opt(
                100_000, "streamed tables: training rows the cleaning and the baselines are fitted on"
            ),
        },
        "clean": CLEAN_OPTIONS,
        "model": {
            "name": opt("mlp", "model architecture", ["mlp"]),
            "dropout": 0.1,
            "depth": opt(2, "hidden layers of the MLP"),
            "width": opt(
                "auto",
                "units per hidden layer; auto = sqrt(training rows) as a power of two, 16 to 128",
                type=int,
                auto=True,
            ),
            "ensemble": opt(
                "auto",
                "MLPs trained side by side from different initial weights, probabilities averaged; "
                f"auto = {ENSEMBLE} below {ENSEMBLE_ROWS} training rows (where one MLP's result "
                "swings with its seed), else 1",
                type=int,
                auto=True,
            ),
            "batch_norm": opt(True, "batch normalisation after each hidden linear layer"),
            "wide": opt(False, "wide and deep: a linear path from the features to the logits beside the MLP"),
            "embedding_dim": opt(
                0,
                "size of categorical embeddings (clean.categorical=embedding); "
                "0 = min(16, (categories + 1) // 2)",
            ),
        },
        "loss": {
            "name": opt("cross_entropy", "training loss (imbalance=focal picks focal)", list(LOSSES)),
            "pos_weight": opt(
                None,
                "weight of a fraud row in the loss or the sampler (null = "
                "sqrt(legit / fraud) in the training split)",
                type=float,
            ),
        },
        "imbalance": opt(
            "weighted_loss",
            "class-imbalance handling: weighted loss, weighted sampling of "
            "training rows, focal loss, or none",
            ["weighted_loss", "sampling", "focal", "none"],
        ),
        "threshold": {
            "rule": opt(
                "max_f1",
                "how the decision threshold is chosen on validation: best F1, or the best "
                "recall at threshold.target precision, or the reverse",
                ["max_f1", "precision", "recall"],
            ),
            "target": opt(0.9, "the precision (rule=precision) or recall (rule=recall) to reach"),
        },
        "predict": {
            "threshold": opt(
                None,
                "decision threshold for is_fraud and for precision/recall/F1 (null = the one chosen "
                "on validation); may be changed at predict and evaluate time",
                type=float,
            ),
        },
        "train": {"warmup": 0.05},
    }
