"""tabular-fraud: a table of transactions with a fraud label -> an MLP that scores each row.

The shared cleaning stage (`dlkit.data.cleaning`) turns the raw columns into features, fitted on the
training split only and saved as JSON. Fraud is rare, so the loss up-weights fraud by
sqrt(legit/fraud) by default (or samples it more often, or uses focal loss), the monitored metric is
the area under the precision-recall curve, and the decision threshold is chosen afterwards on the
validation split (best F1, or a target precision or recall) and used by `predict` (`predict.threshold`
overrides it). Baselines: `prevalence` (every row alike, all flagged), `logistic_regression` and
`gradient_boosting` on the same features, each with its own threshold chosen the same way. The batch
size and the MLP's width follow the training rows (`auto`), so a few hundred rows are not overfitted.

Files: data.py (reading and splitting), model.py, metrics.py (torchmetrics), threshold.py (choosing the
threshold; putting a baseline's on the model's), baselines.py, trees.py (boosted trees as JSON arrays),
predict.py (streamed inputs and records), checks.py (`dlkit check`), recipe.py.
"""

from dlkit.registry import lazy_exports

RECIPE_META = {  # what `dlkit recipes` lists, without importing torch (dlkit/registry.py)
    "name": "tabular-fraud",
    "task": "binary classification of table rows (fraud detection)",
    "description": "Score CSV/Parquet rows for a rare positive class with an MLP over cleaned features.",
    "default_model": "mlp",
    "sample_data": "sample_data/tabular_fraud/transactions.csv",
    "monitor": "average_precision",  # `dlkit info`: monitored under the default config
}
__getattr__ = lazy_exports(
    __name__, TabularFraud="recipe", choose_threshold="threshold", recipe_config="config"
)

__all__ = ["TabularFraud", "choose_threshold", "recipe_config"]
