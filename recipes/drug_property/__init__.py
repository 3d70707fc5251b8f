"""drug-property: molecules as SMILES (or SDF records) with one or more measured targets -> a
message-passing graph network (or an MLP on Morgan fingerprints) that predicts every target at once.

RDKit (the `chem` extra) reads and standardises each molecule: largest fragment, neutralised, canonical
SMILES; invalid ones are named by row and skipped, repeated ones merged (conflicting values reported,
then averaged or dropped). Targets are found automatically (numeric columns besides the SMILES, split and
id columns); a 0/1 target is a binary task, any other a regression task, and a molecule missing a value
is masked for that task in the loss and the metrics. Molecules are split by Bemis-Murcko scaffold by
default. Metrics: AUROC/AUPRC per binary task, RMSE/MAE/R2/Spearman per regression task, and `score`
(the mean of AUROC and R2 over tasks, monitored). Baselines: `mean` and `fingerprint_forest` (a random
forest per task on 2048-bit Morgan fingerprints, kept as JSON trees in the state).

Files: chem.py (all RDKit use), reading.py (files, columns, tasks, standardising, duplicates), data.py
(splits, dataset, graph batching), model.py, metrics.py, baselines.py, predict.py, checks.py, recipe.py.
"""

from dlkit.registry import lazy_exports

RECIPE_META = {  # what `dlkit recipes` lists, without importing torch (dlkit/registry.py)
    "name": "drug-property",
    "task": "molecular property and activity prediction from SMILES (multi-task)",
    "description": (
        "Predict activities and properties of molecules with a message-passing GNN (scaffold split)."
    ),
    "default_model": "gnn",
    "sample_data": "sample_data/drug_property/molecules.csv",
    "monitor": "score",  # `dlkit info`: monitored under the default config
}
__getattr__ = lazy_exports(__name__, DrugProperty="recipe", recipe_config="config")

__all__ = ["recipe_config", "DrugProperty"]
