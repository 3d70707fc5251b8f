"""Reading molecules with their targets: a CSV/TSV/Parquet table with a SMILES column, an SDF file whose
record properties hold the targets, or train/val/test files of either. Then the columns are found (the
SMILES column by name, the targets as the numeric columns left), each target's task is decided (0/1 values
-> binary classification, else regression), every SMILES is standardised (invalid ones are counted, named
by row and skipped) and repeated molecules are merged, their conflicting measurements reported."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from dlkit_recipes.drug_property import chem

from dlkit.data.features import Report
from dlkit.data.splits import parse_split_column, split_files
from dlkit.data.tables import FORMATS, read_table, require_columns
from dlkit.errors import UserError

SDF = (".sdf", ".sd")
SUFFIXES = tuple(FORMATS) + SDF
SMILES_NAMES = ("smiles", "canonical_smiles", "smi", "isomeric_smiles", "mol", "molecule", "structure")
ID_LIKE = re.compile(r"(^|_)(id|name|index|cid|chembl_id|compound)$", re.IGNORECASE)
ROW, GIVEN = "__row", "__split"  # the place of a row in its file ("'f.csv' row 7"), the split it names
SHOWN = 5  # invalid rows named in a message


def data_files(path: Path) -> dict[str, Path]:
    """{'all': file} for one file (or a folder holding exactly one), else split -> file."""
    if path.is_file():
        return {"all": path}
    if not path.is_dir():
        raise UserError(f"data '{path}' does not exist", "give a .csv/.tsv/.parquet table or an .sdf file")
    splits = split_files(path, SUFFIXES)
    if splits:
        if "train" not in splits:
            raise UserError(f"'{path}' has {' and '.join(splits)} files but no train file", "add train.csv")
        return splits
    found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    if len(found) != 1:
        what = ", ".join(p.name for p in found[:5]) or "no table or SDF file"
        raise UserError(
            f"folder '{path}' holds {what}",
            "give one file with --data, or name the files train/val/test (.csv, .parquet or .sdf)",
        )
    return {"all": found[0]}


def read_file(source: Path, encoding: str) -> pd.DataFrame:
    """One file as a frame with a ROW column naming each row's place; SDF records get a `smiles` column
    written from their structure (None when RDKit cannot read the record) beside their properties."""
    if source.suffix.lower() in SDF:
        mols, props = chem.read_sdf(source)
        frame = pd.DataFrame(props)
        smiles = [chem.rdkit()[0].MolToSmiles(m) if m is not None else None for m in mols]
        frame.insert(0, "smiles" if "smiles" not in frame.columns else "sdf_smiles", smiles)
        frame[ROW] = [f"'{source.name}' record {i + 1}" for i in range(len(frame))]
        return frame
    frame = read_table(source, encoding)
    frame[ROW] = [f"'{source.name}' row {i + 2}" for i in range(len(frame))]
    return frame


def find_smiles_column(frame: pd.DataFrame, configured: str | None, source: Path) -> str:
    if configured:
        require_columns(frame, [configured], source, "SMILES column (data.smiles_column)")
        return configured
    if "sdf_smiles" in frame.columns:
        return "sdf_smiles"
    by_name = {str(c).lower(): c for c in frame.columns}
    for name in SMILES_NAMES:
        if name in by_name:
            return str(by_name[name])
    for column in frame.columns:
        if "smiles" in str(column).lower():
            return str(column)
    raise UserError(
        f"'{source}' has no SMILES column (columns: {', '.join(map(str, frame.columns[:20]))})",
        "name it 'smiles' or set data.smiles_column=COLUMN",
    )


def find_targets(frame: pd.DataFrame, configured: list[str], exclude: set[str], source: Path) -> list[str]:
    """The configured targets, else every numeric column that is not the SMILES, split or an id."""
    if configured:
        require_columns(frame, list(configured), source, "target column (data.targets)")
        return list(configured)
    found = [
        str(c)
        for c in frame.columns
        if c not in exclude
        and c != ROW
        and not ID_LIKE.search(str(c))
        and pd.api.types.is_numeric_dtype(frame[c].dtype)
        and frame[c].notna().any()
    ]
    if not found:
        raise UserError(
            f"'{source}' has no numeric target column (columns: {', '.join(map(str, frame.columns[:20]))})",
            "add a numeric column (an activity 0/1, a pIC50...) or name them with data.targets=a,b",
        )
    return found


def task_kinds(frame: pd.DataFrame, targets: list[str], configured: list[str]) -> list[str]:
    """'classification' for a target whose values are all 0/1, else 'regression'; `configured` entries
    ('active:classification') decide for the targets they name."""
    chosen: dict[str, str] = {}
    for entry in configured:
        name, _, kind = str(entry).partition(":")
        if name not in targets or kind not in ("classification", "regression"):
            raise UserError(
                f"data.task_types entry '{entry}' is not TARGET:classification or TARGET:regression",
                f"targets are: {', '.join(targets)}",
            )
        chosen[name] = kind
    kinds = []
    for name in targets:
        values = pd.to_numeric(frame[name], errors="coerce").dropna()
        auto = "classification" if len(values) and values.isin([0, 1]).all() else "regression"
        kinds.append(chosen.get(name, auto))
    return kinds


def numeric_targets(frame: pd.DataFrame, targets: list[str], kinds: list[str]) -> np.ndarray:
    """[rows, tasks] float32, NaN where a row has no value (masked in the loss and the metrics)."""
    out = np.full((len(frame), len(targets)), np.nan, dtype=np.float32)
    for j, (name, kind) in enumerate(zip(targets, kinds, strict=True)):
        raw = frame[name]
        values = pd.to_numeric(raw, errors="coerce")
        bad = raw.notna() & values.isna()
        if bad.any():
            at = frame.loc[bad, ROW].iloc[0]
            raise UserError(
                f"{at}: target '{name}' holds {raw[bad].iloc[0]!r}, not a number",
                "fix the value or leave it empty (a missing target is masked)",
            )
        if kind == "classification" and not values.dropna().isin([0, 1]).all():
            at = frame.loc[values.notna() & ~values.isin([0, 1]), ROW].iloc[0]
            raise UserError(
                f"{at}: classification target '{name}' holds a value other than 0/1",
                f"map it to 0/1, or set data.task_types={name}:regression",
            )
        out[:, j] = values.to_numpy(dtype=np.float32, na_value=np.nan)
    return out


def standardise_rows(
    frame: pd.DataFrame, column: str, report: Report
) -> tuple[pd.DataFrame, list, list[str]]:
    """(valid rows, their molecules, notes): invalid SMILES are skipped and named by row."""
    parsed = [chem.standardise(s if isinstance(s, str) else "") for s in frame[column].tolist()]
    ok = np.array([p.mol is not None for p in parsed], dtype=bool)
    notes = []
    if not ok.all():
        bad = [(row, p.error) for row, p in zip(frame[ROW], parsed, strict=True) if p.mol is None]
        named = "; ".join(f"{row}: {error}" for row, error in bad[:SHOWN])
        more = f" (+{len(bad) - SHOWN} more)" if len(bad) > SHOWN else ""
        report.add("invalid SMILES skipped", column, len(bad), named + more)
        notes.append(f"{len(bad)} of {len(frame)} molecules are not valid and were skipped: {named}{more}")
    kept = frame.loc[ok].copy()
    kept["canonical"] = [p.smiles for p in parsed if p.mol is not None]
    return kept, [p.mol for p in parsed if p.mol is not None], notes


def merge_duplicates(
    frame: pd.DataFrame, y: np.ndarray, kinds: list[str], policy: str, report: Report
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(kept row positions, their targets, notes). Rows of one molecule (same canonical SMILES, same
    given split) become one: replicate values are averaged (a binary label by majority; a tie leaves it
    missing). A molecule whose values disagree (labels differ, or values more than 0.1 standard deviations
    apart) is a conflict: reported, then averaged (`mean`) or removed (`drop`)."""
    keys = [f"{c}|{s}" for c, s in zip(frame["canonical"], frame[GIVEN], strict=True)]
    groups = pd.Series(np.arange(len(frame))).groupby(np.asarray(keys), sort=False).agg(list)
    spread = np.nanstd(y, axis=0) if len(y) else np.zeros(y.shape[1])
    keep, rows, conflicts, repeated = [], [], [], 0
    for members in groups:
        values = y[members]
        if len(members) > 1:
            repeated += len(members) - 1
            if _conflicting(values, kinds, spread):
                conflicts.append(frame[ROW].iloc[members[0]])
                if policy == "drop":
                    continue
        keep.append(members[0])
        rows.append(_average(values, kinds))
    notes = []
    if repeated:
        report.add("repeated molecules merged", "canonical SMILES", repeated, "replicates averaged")
    if conflicts:
        action = "removed" if policy == "drop" else "averaged"
        shown = ", ".join(conflicts[:SHOWN]) + (
            f" (+{len(conflicts) - SHOWN} more)" if len(conflicts) > SHOWN else ""
        )
        report.add(f"conflicting duplicates {action}", "canonical SMILES", len(conflicts), shown)
        notes.append(
            f"{len(conflicts)} molecule(s) appear more than once with conflicting targets ({action}; "
            f"data.duplicates=mean|drop), first at: {shown}"
        )
    return np.asarray(keep, dtype=np.int64), np.asarray(rows, dtype=np.float32).reshape(-1, y.shape[1]), notes


def _conflicting(values: np.ndarray, kinds: list[str], spread: np.ndarray) -> bool:
    for j, kind in enumerate(kinds):
        seen = values[:, j][~np.isnan(values[:, j])]
        if len(seen) < 2:
            continue
        tolerance = 0.0 if kind == "classification" else 0.1 * max(float(spread[j]), 1e-6)
        if seen.max() - seen.min() > tolerance:
            return True
    return False


def _average(values: np.ndarray, kinds: list[str]) -> np.ndarray:
    out = np.full(values.shape[1], np.nan, dtype=np.float32)
    for j, kind in enumerate(kinds):
        seen = values[:, j][~np.isnan(values[:, j])]
        if not len(seen):
            continue
        mean = float(seen.mean())
        out[j] = mean if kind == "regression" else (np.nan if mean == 0.5 else float(mean > 0.5))
    return out


def read_molecules(path: Path, cfg: dict, use_split_column: bool) -> tuple[pd.DataFrame, dict]:
    """Every row of the data with its given split (GIVEN: train/val/test or None) and its place (ROW),
    plus the columns found: {'smiles', 'targets'}."""
    d = cfg["data"]
    frames = []
    for split, source in data_files(path).items():
        frame = read_file(source, d["encoding"])
        if split != "all":
            frame[GIVEN] = split
        elif use_split_column and d["split_column"] in frame.columns:
            frame[GIVEN] = parse_split_column(frame[d["split_column"]].tolist(), str(source))
        else:
            frame[GIVEN] = None
        frames.append((source, frame))
    first_source, first = frames[0]
    smiles = find_smiles_column(first, d["smiles_column"], first_source)
    exclude = {smiles, d["split_column"], GIVEN, "smiles"}
    targets = find_targets(first, d["targets"], exclude, first_source)
    for source, frame in frames[1:]:
        require_columns(frame, [smiles, *targets], source, "column")
    whole = pd.concat([f for _, f in frames], ignore_index=True) if len(frames) > 1 else first
    return whole, {"smiles": smiles, "targets": targets}
