"""Predict inputs: SMILES strings given on the command line, .smi/.txt files (a SMILES and an optional
name per line), tables with a SMILES column (CSV/TSV/Parquet/JSONL) and SDF files, or folders of them.

Molecules are standardised and featurised as they are read, one at a time, so memory stays flat. An
input that is not a molecule still gets its record, with an `error` field instead of predictions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from dlkit_recipes.drug_property import chem
from dlkit_recipes.drug_property.reading import ID_LIKE, SDF, find_smiles_column
from torch.utils.data import Dataset

from dlkit.data.inputs import expand_inputs
from dlkit.data.tables import FORMATS, read_table
from dlkit.errors import UserError

SMI = (".smi", ".smiles")
READABLE = SMI + tuple(FORMATS) + SDF


class MoleculeInputs(Dataset):
    """(text, name, source) per input molecule -> the model's features plus the record's start as 'id'."""

    def __init__(self, entries: list[tuple[str, str | None, str]], state: dict):
        self.entries, self.tasks = entries, len(state["tasks"])
        self.radius, self.bits = state["features"]["radius"], state["features"]["bits"]

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> dict:
        text, name, source = self.entries[i]
        record = {"input": text, **({"name": name} if name else {}), **({"source": source} if source else {})}
        parsed = chem.standardise(text)
        if parsed.mol is None:
            record["error"] = parsed.error
            features = {
                "atoms": np.zeros((0, chem.ATOM_DIM), np.float32),
                "edges": np.zeros((2, 0), np.int64),
                "bonds": np.zeros((0, chem.BOND_DIM), np.float32),
            }
            bits = np.zeros(self.bits, np.uint8)
        else:
            record["smiles"] = parsed.smiles
            features = chem.graph(parsed.mol)
            bits = chem.fingerprints([parsed.mol], self.radius, self.bits)[0]
        return {
            **features,
            "fingerprint": torch.from_numpy(bits),
            "target": torch.full((self.tasks,), float("nan")),
            "id": record,
        }


def _smi_lines(path: Path) -> list[tuple[str, str | None, str]]:
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split(maxsplit=1)
        if parts and not parts[0].startswith("#") and parts[0].lower() not in ("smiles", "smi"):
            out.append((parts[0], parts[1].strip() if len(parts) > 1 else None, path.name))
    return out


def _table_rows(path: Path, state: dict, encoding: str, configured: str | None) -> list[tuple]:
    frame = read_table(path, encoding)
    column = configured or (state["smiles_column"] if state["smiles_column"] in frame.columns else None)
    column = find_smiles_column(frame, column, path)
    names = next((c for c in frame.columns if ID_LIKE.search(str(c))), None)
    labels = frame[names].astype(str).tolist() if names is not None else [None] * len(frame)
    texts = ["" if not isinstance(s, str) else s for s in frame[column].tolist()]
    return [(s, n, path.name) for s, n in zip(texts, labels, strict=True)]


def _sdf_records(path: Path) -> list[tuple]:
    mols, _ = chem.read_sdf(path)
    to_smiles = chem.rdkit()[0].MolToSmiles
    out = []
    for i, mol in enumerate(mols):
        name = mol.GetProp("_Name") if mol is not None and mol.HasProp("_Name") else None
        out.append((to_smiles(mol) if mol is not None else "", name or f"record {i + 1}", path.name))
    return out


def read_inputs(inputs: list[str], state: dict, cfg: dict) -> MoleculeInputs:
    """Every input, in order. A file or folder is read; anything else is taken as a SMILES string (a
    name ending in .csv, .smi, .sdf... that does not exist is refused as a missing file)."""
    entries: list[tuple] = []
    for raw in inputs:
        p = Path(raw).expanduser()
        if not p.exists() and p.suffix.lower() not in READABLE:
            entries.append((raw, None, None))
            continue
        what = "molecule files (.smi, .csv, .tsv, .parquet, .jsonl, .sdf)"
        for path in expand_inputs([raw], lambda f: f.suffix.lower() in READABLE, what, recursive=False):
            suffix = path.suffix.lower()
            if suffix in SMI:
                entries += _smi_lines(path)
            elif suffix in SDF:
                entries += _sdf_records(path)
            else:
                entries += _table_rows(path, state, cfg["data"]["encoding"], cfg["data"]["smiles_column"])
    if not entries:
        raise UserError(
            f"no molecule to predict in: {', '.join(inputs)}", "give SMILES or files holding them"
        )
    return MoleculeInputs(entries, state)


def to_records(records: list[dict], preds: torch.Tensor, state: dict) -> list[dict]:
    """Each input's record with the predictions: the value of a regression task; for a binary task the
    probability of 1 (`TASK_probability`) and the call at 0.5 (`TASK`). Errors carry no predictions."""
    out = []
    for record, values in zip(records, preds.tolist(), strict=True):
        record = dict(record)
        if "error" not in record:
            for task, value in zip(state["tasks"], values, strict=True):
                if task["kind"] == "classification":
                    record[f"{task['name']}_probability"] = round(value, 6)
                    record[task["name"]] = int(value > 0.5)
                else:
                    record[task["name"]] = round(value, 6)
        out.append(record)
    return out
