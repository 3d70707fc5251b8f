"""Export of the fraud MLP: cleaned numeric features and category codes -> logits (not fraud, fraud).

The cleaning pipeline (imputation, scaling, category codes) and the decision threshold are in the copied
state (preprocess/state.json: `pipeline`, `features`, `threshold`); a fraud score is softmax(logits)[1].
"""

from __future__ import annotations

from dlkit.export import ExportAdapter


class FraudExport(ExportAdapter):
    inputs = ("numeric", "categorical")
    outputs = ("logits",)

    def threshold(self) -> float:
        override = self.recipe.cfg["predict"]["threshold"]
        return float(override) if override is not None else float(self.state["threshold"])

    def agreement(self, ref: tuple, got: tuple) -> tuple[int, int]:
        """The same is_fraud decision: softmax score above the run's threshold."""
        t = self.threshold()
        same = (ref[0].softmax(-1)[:, 1] > t) == (got[0].softmax(-1)[:, 1] > t)
        return int(same.sum()), same.numel()

    def describe(self) -> dict:
        return {
            "input": "rows cleaned by the run's pipeline (preprocess/state.json: pipeline): numeric features "
            "imputed and scaled (float32), categorical ones as integer codes (int64)",
            "numeric_features": len(self.state["features"]),
            "threshold": self.threshold(),
            "output": "logits (not fraud, fraud); score = softmax(logits)[1], is_fraud = score > threshold",
        }
