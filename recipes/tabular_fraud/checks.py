"""`dlkit check tabular-fraud`: readability, label, missing and non-numeric values, column types,
constant columns, duplicates, conflicting labels, outliers, then (when nothing is fatal) leakage across
the split and class balance, all with the shared checks of `dlkit.data.checks`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from dlkit_recipes.tabular_fraud.data import read_labelled, sources, split_rows

from dlkit.data import checks
from dlkit.data.column_kinds import column_types
from dlkit.data.features import Report
from dlkit.data.tables import read_table
from dlkit.errors import UserError
from dlkit.recipe import Finding


def _fatal(findings: list[Finding]) -> bool:
    return any(f.severity == "fatal" for f in findings)


def check_tables(path: Path, cfg: dict) -> list[Finding]:
    d = cfg["data"]
    try:
        srcs = sources(path)
    except UserError as exc:
        return [Finding("data readable", "fatal", exc.message, exc.hint or "")]
    files = [f for group in srcs.values() for f in group]
    loaded, findings = checks.readable_files(files, lambda p: read_table(p, d["encoding"]))
    if len(loaded) < len(files):
        return findings
    frames = list(loaded.values())
    whole = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    where = f"'{path}'"
    findings += checks.label_column(whole, d["label"], where)
    if _fatal(findings):
        return findings
    exclude = [d["label"], d["split_column"]]
    findings += checks.label_values(whole[d["label"]], classes=2)
    findings += checks.missing_values(whole, exclude)
    findings += checks.non_numeric_values(whole, exclude, where)
    if _fatal(findings):
        return findings
    kinds = column_types(whole, [c for c in whole.columns if c not in exclude], cfg["clean"], where)
    findings.append(
        Finding(
            "column types",
            "info",
            "; ".join(
                f"{kind}: {', '.join(c for c, k in kinds.items() if k == kind)}"
                for kind in dict.fromkeys(kinds.values())
            ),
            "id-like and constant columns are dropped; override with clean.types.COLUMN=TYPE",
        )
    )
    features = [c for c, k in kinds.items() if k not in ("id", "constant", "drop")]
    findings += checks.constant_columns(whole, exclude)
    findings += checks.duplicates(whole)
    findings += checks.conflicting_labels(whole, d["label"], features)
    findings += checks.outliers(whole, exclude, cfg["clean"])
    try:
        report = Report()
        frame, given = read_labelled(srcs, cfg, report)
        groups, _ = split_rows(frame, given, cfg, report, None, where)
    except UserError as exc:
        return findings + [Finding("split", "fatal", exc.message, exc.hint or "")]
    findings += checks.split_leakage(groups["train"], groups["test"], features)
    findings += checks.class_balance({s: g[d["label"]] for s, g in groups.items()})
    return findings
