"""drug-property: scaffold splits keep scaffolds apart, invalid SMILES are named (train, check) and get an
error record (predict), SDF files work as data and as inputs, missing targets are masked per task, a run
predicts from its directory alone, and a missing RDKit stops with the install line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import expect_user_error, load_sample_generator

from dlkit import console, jobs
from dlkit.jobs.common import build_config

pytest.importorskip("rdkit")

from dlkit_recipes.drug_property import chem  # noqa: E402
from dlkit_recipes.drug_property.recipe import DrugProperty  # noqa: E402

TINY = ["train.epochs=20", "model.hidden=32", "data.batch_size=32"]


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """260 messy molecules (3 invalid SMILES, salt-form duplicates) from the sample-data generator."""
    out = tmp_path_factory.mktemp("molecules")
    load_sample_generator("drug_property").generate(out, seed=1, molecules=250)
    return out


@pytest.fixture(scope="module")
def run(small, tmp_path_factory) -> tuple[Path, dict]:
    """One tiny training run on the small set, reused by the evaluate and predict tests."""
    out = tmp_path_factory.mktemp("drug_runs") / "run"
    console.set_quiet(True)
    try:
        result = jobs.train("drug-property", data=str(small / "molecules.csv"), out=out, overrides=TINY)
    finally:
        console.set_quiet(False)
    return out, result


def _recipe(*overrides: str) -> DrugProperty:
    return DrugProperty(build_config(DrugProperty, None, list(overrides)))


def test_scaffold_split_keeps_every_scaffold_in_one_split(small):
    from dlkit_recipes.drug_property.data import scaffold_split

    frame = pd.read_csv(small / "molecules.csv")
    mols = [p.mol for p in map(chem.standardise, frame["smiles"]) if p.mol is not None]
    scaffolds = [chem.scaffold(m) for m in mols]
    assigned = scaffold_split(scaffolds, 0.15, 0.15)
    where: dict[str, set[str]] = {}
    for s, split in zip(scaffolds, assigned, strict=True):
        where.setdefault(s, set()).add(split)
    assert all(len(splits) == 1 for splits in where.values())
    counts = {s: assigned.count(s) for s in ("train", "val", "test")}
    assert counts["train"] >= 0.65 * len(mols) and counts["val"] > 0 and counts["test"] > 0
    largest = max(set(scaffolds), key=scaffolds.count)
    assert where[largest] == {"train"}  # the field's rule: the biggest scaffold groups train
    assert scaffold_split(scaffolds, 0.15, 0.15) == assigned  # deterministic


def test_training_skips_invalid_smiles_naming_rows_and_beats_the_mean(run, small):
    out, result = run
    frame = pd.read_csv(small / "molecules.csv")
    bad_rows = [i + 2 for i, s in enumerate(frame["smiles"]) if chem.standardise(s).mol is None]
    assert len(bad_rows) == 3
    state = json.loads((out / "preprocess" / "state.json").read_text())
    skipped = next(e for e in state["cleaning_report"] if e["step"] == "invalid SMILES skipped")
    assert skipped["count"] == 3
    assert all(f"row {r}" in skipped["detail"] for r in bad_rows)
    assert [t["kind"] for t in state["tasks"]] == ["regression", "classification"]
    eval_json = json.loads((out / "eval.json").read_text())
    assert set(eval_json["baselines"]) == {"mean", "fingerprint_forest"}
    assert eval_json["metrics"]["score"] > eval_json["baselines"]["mean"]["score"]
    assert {"lipophilicity_rmse", "lipophilicity_r2", "active_auroc", "active_auprc"} <= set(
        result["metrics"]
    )


def test_check_names_invalid_rows_duplicates_and_scaffolds(cli, small):
    res = cli("check", "drug-property", "--data", small / "molecules.csv", "--json")
    assert res.code == 0, res.err
    found = {f["check"]: f for f in json.loads(res.out)["findings"]}
    assert found["invalid SMILES"]["severity"] == "warning"
    assert "3 of" in found["invalid SMILES"]["message"] and "row " in found["invalid SMILES"]["message"]
    assert "conflicting targets" in found["duplicates"]["message"]
    assert "largest" in found["scaffold diversity"]["message"]
    assert {"target lipophilicity", "target active", "split"} <= set(found)


def test_train_and_test_files_keep_their_split(small, tmp_path):
    frame = pd.read_csv(small / "molecules.csv")
    frame.iloc[:200].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[200:].to_csv(tmp_path / "test.csv", index=False)
    data = _recipe().load_data(tmp_path)
    assert data.state["split"] == "column"
    test_ids = set(frame.iloc[200:]["smiles"])
    assert len(data.test) == len({chem.standardise(s).smiles for s in test_ids} - {""})
    assert len(data.train) + len(data.val) < 200


def test_check_reports_leakage_across_a_given_split_column(cli, tmp_path):
    rows = ["CCOc1ccccc1", "c1ccncc1C", "CCN(CC)C(=O)c1ccccc1", "OC1CCCCC1", "Oc1ccccc1"] * 4
    frame = pd.DataFrame({"smiles": rows, "y": np.arange(20.0), "split": ["train"] * 15 + ["test"] * 5})
    frame.loc[19, "smiles"] = "[Na+].[O-]c1ccccc1"  # the phenol of row 5, as a salt, in test
    frame.to_csv(tmp_path / "given.csv", index=False)
    res = cli("check", "drug-property", "--data", tmp_path / "given.csv", "data.split=column", "--json")
    assert res.code == 0, res.err
    found = {f["check"]: f for f in json.loads(res.out)["findings"]}
    assert found["train/test leakage"]["severity"] == "warning"


def test_predict_from_the_run_alone_gives_error_records_for_invalid_smiles(run, small, tmp_path):
    out, _ = run
    moved = tmp_path / "moved" / "run"
    shutil.copytree(out, moved)
    table = tmp_path / "new.csv"
    pd.DataFrame({"compound_id": ["a", "b"], "SMILES": ["CCO", "not a smiles"]}).to_csv(table, index=False)
    result = jobs.predict(moved, ["c1ccccc1O", "C1CC", str(small / "new_molecules.smi"), str(table)])
    records = result["predictions"]
    assert records[0]["smiles"] == "Oc1ccccc1" and isinstance(records[0]["lipophilicity"], float)
    assert 0 <= records[0]["active_probability"] <= 1 and records[0]["active"] in (0, 1)
    assert records[1]["input"] == "C1CC" and "error" in records[1] and "lipophilicity" not in records[1]
    smi = [r for r in records if r.get("source") == "new_molecules.smi"]
    assert len(smi) == len((small / "new_molecules.smi").read_text().splitlines())
    assert sum("error" in r for r in smi) == 1
    tabled = [r for r in records if r.get("source") == "new.csv"]
    assert [r.get("name") for r in tabled] == ["a", "b"] and "error" in tabled[1]


def test_evaluate_rescores_the_forest_from_the_state(run):
    out, result = run
    console.set_quiet(True)
    try:
        again = jobs.evaluate(out)
    finally:
        console.set_quiet(False)
    forest = again["baselines"]["fingerprint_forest"]["score"]
    assert forest == pytest.approx(result["baselines"]["fingerprint_forest"]["score"], abs=1e-6)


def test_the_blend_weight_is_fitted_on_validation_and_kept_for_evaluate(run):
    out, result = run
    blend = json.loads((out / "eval.json").read_text())["details"]["blend"]
    assert 0 <= blend["gnn_weight"] <= 1
    assert blend["val_score"] >= max(blend["val_gnn"], blend["val_mlp"])  # the grid holds both ends
    console.set_quiet(True)
    try:
        again = jobs.evaluate(out)
    finally:
        console.set_quiet(False)
    assert again["metrics"]["score"] == pytest.approx(result["metrics"]["score"], abs=1e-6)


def test_a_blend_trains_each_member_on_its_own_loss_and_mixes_predictions():
    recipe = _recipe()
    recipe.setup({"tasks": [{"name": "y", "kind": "regression", "scale_mean": 0.0, "scale_std": 1.0}]}, True)
    recipe.gnn_weight = 0.25
    raw = torch.tensor([[[1.0], [2.0]], [[3.0], [6.0]]], requires_grad=True)  # (members, molecules, tasks)

    class Fixed(torch.nn.Module):
        def forward(self, batch):
            return raw

    out = recipe.step(Fixed(), {"target": torch.tensor([[1.0], [2.0]])}, "train")
    assert out["loss"].item() == pytest.approx(0 + (4 + 16) / 2)  # the GNN's loss plus the MLP's
    assert out["preds"].squeeze(1).tolist() == pytest.approx([0.25 * 1 + 0.75 * 3, 0.25 * 2 + 0.75 * 6])


def test_sdf_data_and_sdf_inputs(cli, run, small, tmp_path):
    from rdkit import Chem

    frame = pd.read_csv(small / "molecules.csv").dropna(subset=["lipophilicity"]).head(120)
    sdf = tmp_path / "mols.sdf"
    writer = Chem.SDWriter(str(sdf))
    written = []
    for row in frame.itertuples():
        mol = Chem.MolFromSmiles(row.smiles)
        if mol is None:
            continue
        mol.SetProp("_Name", row.id)
        mol.SetDoubleProp("logd", float(row.lipophilicity))
        writer.write(Chem.AddHs(mol))  # explicit hydrogens, as many SDF exports have
        written.append(row.id)
    writer.close()
    data = _recipe("data.split=random").load_data(sdf)
    total = sum(len(d) for d in (data.train, data.val, data.test))
    assert [t["name"] for t in data.state["tasks"]] == ["logd"]
    assert 0 < total <= len(written) and data.state["tasks"][0]["kind"] == "regression"
    res = cli("check", "drug-property", "--data", sdf, "--json")
    assert res.code == 0 and json.loads(res.out)["fatal"] == 0, res.err
    out, _ = run
    records = jobs.predict(out, [str(sdf)])["predictions"]
    assert [r["name"] for r in records] == written
    assert all("error" not in r for r in records)


def test_missing_targets_are_masked_per_task():
    recipe = _recipe()
    state = {
        "tasks": [
            {"name": "y", "kind": "regression", "scale_mean": 1.0, "scale_std": 2.0},
            {"name": "active", "kind": "classification", "scale_mean": 0.0, "scale_std": 1.0},
        ]
    }
    recipe.setup(state, fresh=True)
    raw = torch.zeros(4, 2, requires_grad=True)

    class Fixed(torch.nn.Module):
        def forward(self, batch):
            return raw

    nan = float("nan")
    target = torch.tensor([[3.0, nan], [nan, nan], [1.0, nan], [nan, nan]])
    out = recipe.step(Fixed(), {"target": target}, "train")
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    assert out["loss"].item() == pytest.approx(0.5)  # (((3-1)/2)^2 + 0) / 2 molecules, one task present
    assert raw.grad[:, 1].abs().sum() == 0  # no label for `active`: no gradient
    assert raw.grad[1].abs().sum() == 0 and raw.grad[3].abs().sum() == 0
    assert raw.grad[0, 0] != 0


def test_metrics_skip_missing_values():
    from dlkit_recipes.drug_property.metrics import task_metrics

    metrics = task_metrics(["y", "active"], ["regression", "classification"])
    nan = float("nan")
    preds = torch.tensor([[1.0, 0.9], [2.0, 0.1], [3.0, 0.8], [4.0, 0.2]])
    target = torch.tensor([[1.0, 1.0], [2.0, nan], [3.0, 0.0], [nan, 0.0]])
    for m in metrics.values():
        m.update(preds, target)
    assert metrics["y_rmse"].compute().item() == pytest.approx(0.0)
    assert metrics["active_auroc"].compute().item() == pytest.approx(1.0)
    assert metrics["score"].compute().item() == pytest.approx(1.0)


def test_without_rdkit_the_recipe_stops_with_the_install_line(cli, monkeypatch, small, tmp_path):
    import sys

    chem.rdkit.cache_clear()
    monkeypatch.setitem(sys.modules, "rdkit.Chem", None)  # `import rdkit.Chem` now raises ImportError
    for args in (["check", "drug-property"], ["train", "drug-property", "--out", tmp_path / "run"]):
        expect_user_error(cli(*args, "--data", small / "molecules.csv"), "pip install 'dlkit[chem]'")
    assert not (tmp_path / "run").exists()
