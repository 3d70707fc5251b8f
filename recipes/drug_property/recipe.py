"""The drug-property recipe: config, reading and splitting molecules into the fitted state, the models and
the masked multi-task loss, metrics, baselines, predict and check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from dlkit_recipes.drug_property import baselines as base
from dlkit_recipes.drug_property import chem, reading
from dlkit_recipes.drug_property import predict as pred
from dlkit_recipes.drug_property.config import recipe_config
from dlkit_recipes.drug_property.data import MolSet, assign, collate_graphs
from dlkit_recipes.drug_property.model import build
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from dlkit.data.cleaning import print_report
from dlkit.data.features import Report
from dlkit.data.tables import require_columns
from dlkit.errors import UserError
from dlkit.recipe import Finding, Recipe, RecipeData


class DrugProperty(Recipe):
    name = "drug-property"
    task = "molecular property and activity prediction from SMILES (multi-task)"
    description = (
        "Predict activities and properties of molecules with a message-passing GNN (scaffold split)."
    )
    default_model = "gnn"
    sample_data = "sample_data/drug_property/molecules.csv"
    sample_inputs = ("sample_data/drug_property/new_molecules.smi",)
    monitor = "score"
    monitor_mode = "max"
    inference_keys = ("data.encoding", "data.smiles_column")

    @classmethod
    def config(cls) -> dict:
        return recipe_config()  # config.py: light, so `dlkit info` reads it without torch

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        self.kinds: torch.Tensor | None = None
        self.scale: torch.Tensor | None = None
        self.gnn_weight = 0.5  # a Blend's mix (model.blend): fitted on validation after training

    # --- data ------------------------------------------------------------------------------------------
    def load_data(self, path: Path, state: dict | None = None, evaluate_all: bool = False) -> RecipeData:
        chem.rdkit()  # the chem extra, or exit 2 with its install line
        d, report = self.cfg["data"], Report()
        method = "column" if evaluate_all else d["split"]
        frame, found = reading.read_molecules(path, self.cfg, use_split_column=method == "column")
        if frame[reading.GIVEN].notna().any():  # train/val/test files: the user's split stands
            method = "column"
        notes = []
        if method != "column" and d["split_column"] in frame.columns:
            notes.append(
                f"column '{d['split_column']}' is not used to split (data.split={method}; =column uses it)"
            )
        targets = [t["name"] for t in state["tasks"]] if state else found["targets"]
        if state:
            require_columns(frame, targets, path, "target column")
        kinds = (
            [t["kind"] for t in state["tasks"]]
            if state
            else reading.task_kinds(frame, targets, d["task_types"])
        )
        frame, mols, invalid = reading.standardise_rows(frame, found["smiles"], report)
        notes += invalid
        y = reading.numeric_targets(frame, targets, kinds)
        keep, y, conflicts = reading.merge_duplicates(frame, y, kinds, d["duplicates"], report)
        notes += conflicts
        labelled = ~np.isnan(y).all(axis=1)
        if not labelled.all():
            report.add("molecules without any target dropped", targets, int((~labelled).sum()))
        keep, y = keep[labelled], y[labelled]
        frame, mols = frame.iloc[keep], [mols[i] for i in keep]
        if not mols:
            raise UserError(f"'{path}' holds no valid molecule with a target", "see `dlkit check`")
        scaffolds = [chem.scaffold(m) for m in mols]
        if evaluate_all:
            parts = {"test": list(range(len(mols)))}
        else:
            parts = assign(method, frame[reading.GIVEN].tolist(), scaffolds, self.cfg)
        f = state["features"] if state else self.cfg["features"]
        graphs = [chem.graph(m) for m in mols]
        prints = chem.fingerprints(mols, f["radius"], f["bits"])
        sets = {
            split: MolSet([graphs[i] for i in rows], prints[rows], y[rows], rows)
            for split, rows in parts.items()
            if rows
        }
        if state is None:
            if "train" not in sets:
                raise UserError(f"no molecule of '{path}' is in the train split", "check data.split")
            state = self._fit_state(found["smiles"], targets, kinds, sets, scaffolds, parts, method, report)
            print_report(report.entries, f"cleaning report: {path}")
        return RecipeData(sets.get("train"), sets.get("val"), sets.get("test"), state, notes)

    def _fit_state(
        self, smiles: str, targets, kinds, sets: dict, scaffolds, parts, method: str, report: Report
    ) -> dict:
        train = sets["train"].targets.numpy()
        tasks = []
        for j, (name, kind) in enumerate(zip(targets, kinds, strict=True)):
            seen = train[:, j][~np.isnan(train[:, j])]
            if not len(seen):
                raise UserError(f"target '{name}' has no value in the train split", "check the data")
            std = float(seen.std()) if kind == "regression" and seen.std() > 0 else 1.0
            tasks.append(
                {
                    "name": name,
                    "kind": kind,
                    "train_mean": float(seen.mean()),
                    "scale_mean": float(seen.mean()) if kind == "regression" else 0.0,
                    "scale_std": std,
                    "train_values": len(seen),
                }
            )
        largest = max(np.unique(scaffolds, return_counts=True)[1]) / len(scaffolds)
        return {
            "smiles_column": smiles,
            "tasks": tasks,
            "features": dict(self.cfg["features"]),
            "split": method,
            "counts": {s: len(v) for s, v in sets.items()},
            "scaffolds": {s: len({scaffolds[i] for i in rows}) for s, rows in parts.items()},
            "largest_scaffold_share": round(float(largest), 4),
            "cleaning_report": report.entries,
            "fingerprint_forest": base.fit_forest(
                sets["train"].fingerprints.numpy(), train, kinds, self.cfg["seed"]
            ),
        }

    # --- model, loss, step, metrics --------------------------------------------------------------------
    def setup(self, state: dict, fresh: bool) -> None:
        """Per-task tensors: which tasks are binary, and the train mean and spread of regression targets."""
        tasks = state["tasks"]
        self.kinds = torch.tensor([t["kind"] == "classification" for t in tasks])
        self.scale = torch.tensor([[t["scale_mean"] for t in tasks], [t["scale_std"] for t in tasks]])
        self.gnn_weight = state.get("blend", {}).get("gnn_weight", 0.5)

    def build_model(self, state: dict) -> nn.Module:
        return build(
            self.cfg["model"]["name"], len(state["tasks"]), state["features"]["bits"], self.cfg["model"]
        )

    def collate(self, items: list[dict]) -> dict:
        return collate_graphs(items)

    def _outputs(self, raw: torch.Tensor) -> torch.Tensor:
        """Model outputs in the targets' units: P(1) for a binary task, the value for a regression task."""
        binary, scale = self.kinds.to(raw.device), self.scale.to(raw.device)
        return torch.where(binary, raw.sigmoid(), raw * scale[1] + scale[0])

    def _members(self, model: nn.Module, batch: dict) -> torch.Tensor:
        """Raw outputs as (members, molecules, tasks): a Blend's two, or one model's one."""
        raw = model(batch).float()
        return raw if raw.dim() == 3 else raw.unsqueeze(0)

    def _mix(self, outputs: torch.Tensor, gnn_weight: float | None = None) -> torch.Tensor:
        """One prediction from the members' outputs (in the targets' units): a Blend's weighted mean."""
        if len(outputs) == 1:
            return outputs[0]
        w = self.gnn_weight if gnn_weight is None else gnn_weight
        return w * outputs[0] + (1 - w) * outputs[1]

    def _loss(self, raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Masked multi-task loss: each task's mean over the molecules that have its value, averaged over
        the tasks present in the batch (a missing value adds nothing and takes no gradient)."""
        binary, scale = self.kinds.to(raw.device), self.scale.to(raw.device)
        seen = ~torch.isnan(target)
        z = torch.where(binary, torch.nan_to_num(target), (torch.nan_to_num(target) - scale[0]) / scale[1])
        regress = F.mse_loss if self.cfg["loss"]["name"] == "mse" else F.l1_loss
        each = torch.where(
            binary,
            F.binary_cross_entropy_with_logits(raw, z, reduction="none"),
            regress(raw, z, reduction="none"),
        )
        per_task = (each * seen).sum(0) / seen.sum(0).clamp(min=1)
        present = seen.any(0)
        return per_task[present].mean() if present.any() else raw.sum() * 0

    def step(self, model: nn.Module, batch: dict, stage: str) -> dict:
        """The masked loss of each member (a Blend's two are summed: each learns on its own) and the mixed
        prediction."""
        raw, target = self._members(model, batch), batch["target"]
        loss = sum(self._loss(member, target) for member in raw)
        return {"loss": loss, "preds": self._mix(self._outputs(raw.detach())), "target": target}

    def metrics(self, state: dict) -> dict:
        from dlkit_recipes.drug_property.metrics import task_metrics

        return task_metrics([t["name"] for t in state["tasks"]], [t["kind"] for t in state["tasks"]])

    # --- baselines and details -------------------------------------------------------------------------
    def baselines(self, data: RecipeData) -> dict:
        """`mean` (trivial) and `fingerprint_forest` (random forest on Morgan bits, fitted into the state)."""
        return base.predictors(data.state)

    def eval_details(self, data: RecipeData, metrics: dict, baselines: dict) -> dict:
        state = data.state
        test = data.test.targets.numpy()
        return {
            "split": state["split"],
            "tasks": {
                t["name"]: {"kind": t["kind"], "test_values": int((~np.isnan(test[:, j])).sum())}
                for j, t in enumerate(state["tasks"])
            },
            "molecules": state["counts"],
            "scaffolds": state["scaffolds"],
            "largest_scaffold_share": state["largest_scaffold_share"],
            "score": "mean over tasks of AUROC (classification) and R2 (regression)",
            **({"blend": state["blend"]} if "blend" in state else {}),
        }

    # --- predict ---------------------------------------------------------------------------------------
    def read_inputs(self, inputs: list[str], state: dict) -> Dataset:
        chem.rdkit()
        return pred.read_inputs(inputs, state, self.cfg)

    def predict_step(self, model: nn.Module, batch: dict) -> dict:
        outputs = self._outputs(self._members(model, batch))
        return {"preds": self._mix(outputs), "members": outputs.transpose(0, 1)}

    def calibrate(self, ids: list, outputs: dict, data: RecipeData) -> dict:
        """A Blend's weight: the mix of the GNN's and the fingerprint MLP's validation predictions with
        the best validation score, on a grid of 21 weights (ties go to the GNN)."""
        members = outputs["members"]  # (molecules, members, tasks)
        if members.shape[1] == 1:
            return {}
        where = {id_: i for i, id_ in enumerate(data.val.ids)}
        target = data.val.targets[[where[i] for i in ids]]
        scores = {}
        for w in torch.linspace(1, 0, 21).tolist():
            metric = self.metrics(data.state)["score"]
            metric.update(self._mix(members.transpose(0, 1), w), target)
            scores[round(w, 2)] = float(metric.compute())
        best = max(scores, key=lambda w: (np.nan_to_num(scores[w], nan=-np.inf), w))
        self.gnn_weight = best
        blend = {
            "gnn_weight": best,
            "val_score": scores[best],
            "val_gnn": scores[1.0],
            "val_mlp": scores[0.0],
        }
        return {"blend": blend}

    def to_records(self, ids: list, outputs: dict, state: dict) -> list[dict]:
        return pred.to_records(ids, outputs["preds"], state)

    # --- dlkit check -----------------------------------------------------------------------------------
    def check(self, path: Path) -> list[Finding]:
        from dlkit_recipes.drug_property.checks import check_molecules

        chem.rdkit()
        return check_molecules(path, self.cfg)
