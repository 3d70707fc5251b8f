"""drug-property's default config (`Recipe.config()` returns it), light: nothing heavy is imported, so
`dlkit info` reads it without torch. Constants it shares with the heavy modules live here.
"""

from __future__ import annotations

from dlkit.config import opt

READOUTS = ("sum", "mean", "attention")


def recipe_config() -> dict:
    return {
        "data": {
            "batch_size": 64,
            "smiles_column": opt(
                None,
                "column holding SMILES (null = found by name: smiles, canonical_smiles, mol...)",
                type=str,
            ),
            "targets": opt(
                [],
                "target columns, e.g. [pic50, active] (empty = every numeric column other than the "
                "SMILES, the split column and id-like columns)",
                type=list,
            ),
            "task_types": opt(
                [],
                "TARGET:classification or TARGET:regression entries (empty = auto: a 0/1 target is "
                "binary classification, any other regression)",
                type=list,
            ),
            "split": opt(
                "scaffold",
                "how molecules are split: by Bemis-Murcko scaffold (test scaffolds unseen in train), at "
                "random, or as the data's split column / train-val-test files say",
                ["scaffold", "random", "column"],
            ),
            "split_column": opt("split", "column naming each row's split (with data.split=column)"),
            "duplicates": opt(
                "mean",
                "a molecule listed more than once with conflicting targets: average (binary: majority) "
                "or drop it (consistent replicates are always merged)",
                ["mean", "drop"],
            ),
            "encoding": opt("utf-8", "text encoding of CSV files"),
        },
        "features": {
            "radius": opt(2, "Morgan fingerprint radius (2 = ECFP4)"),
            "bits": opt(2048, "Morgan fingerprint length in bits"),
        },
        "model": {
            "name": opt(
                "gnn",
                "message-passing network over atoms and bonds, or an MLP on Morgan fingerprints",
                ["gnn", "fingerprint_mlp"],
            ),
            "hidden": opt(128, "units per atom state (gnn) or hidden layer (fingerprint_mlp)"),
            "depth": opt(3, "message-passing rounds (gnn) or hidden layers (fingerprint_mlp)"),
            "readout": opt("sum", "how atom states become a molecule vector (gnn)", list(READOUTS)),
            "fingerprint": opt(
                True,
                "gnn: the Morgan fingerprint (features.*), through a layer of its own, joins the pooled "
                "atoms before the head",
            ),
            "blend": opt(
                True,
                "gnn: a fingerprint MLP is trained beside the GNN, each on its own loss, and their "
                "predictions are mixed with a weight fitted on validation (0 = the MLP's alone, 1 = the "
                "GNN's alone; it is in eval.json)",
            ),
            "dropout": 0.1,
        },
        "loss": {
            "name": opt(
                "mse",
                "loss of regression tasks on standardised targets (binary tasks use cross-entropy)",
                ["mse", "mae"],
            ),
        },
        "train": {"min_steps": 800, "patience": 8},
    }
