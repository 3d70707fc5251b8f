"""`dlkit check tabular-fraud`: readability, label, missing and non-numeric values, column types,
constant columns, duplicates, conflicting labels, outliers, then (when nothing is fatal) leakage across
the split and class balance, all with the shared checks of `dlkit.data.checks`.

Tables that training would stream (bigger than `data.stream_above`) are checked the way training reads
them: one pass in chunks, every value read (a non-number is named by file and row), labels and class
balance counted exactly per split; the column checks run on the pass's uniform sample of training rows.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from dlkit_recipes.tabular_fraud.data import read_labelled, sources, split_rows
from dlkit_recipes.tabular_fraud.stream_scan import TRAIN, make_plan, scan, should_stream

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
    if should_stream(srcs, d["stream_above"]):
        return _check_streamed(path, srcs, cfg)
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
    columns, features = _columns(whole, cfg, where)
    findings += columns
    try:
        report = Report()
        frame, given = read_labelled(srcs, cfg, report)
        groups, _ = split_rows(frame, given, cfg, report, None, where)
    except UserError as exc:
        return findings + [Finding("split", "fatal", exc.message, exc.hint or "")]
    findings += checks.split_leakage(groups["train"], groups["test"], features)
    findings += checks.class_balance({s: g[d["label"]] for s, g in groups.items()})
    return findings


def _columns(whole: pd.DataFrame, cfg: dict, where: str) -> tuple[list[Finding], list[str]]:
    """Column types, constant columns, duplicates, conflicting labels and outliers; and the feature
    columns."""
    d = cfg["data"]
    exclude = [d["label"], d["split_column"]]
    findings = []
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
    return findings, features


def _check_streamed(path: Path, srcs: dict, cfg: dict) -> list[Finding]:
    """One pass over a table too big to load, as training reads it."""
    d = cfg["data"]
    try:
        found = scan(make_plan(srcs, cfg), d["stream_sample"])
    except UserError as exc:
        return [Finding("data readable", "fatal", exc.message, exc.hint or "")]
    sample = found.samples[TRAIN]
    rows = {s: found.rows(i) for i, s in enumerate(("train", "val", "test"))}
    findings = [
        Finding(
            "streamed",
            "info",
            f"'{path}' is bigger than data.stream_above: read in one pass of chunks, every value checked; "
            f"{sum(rows.values()):,} labelled rows; the column checks below ran on a uniform sample of "
            f"{len(sample):,} training rows",
            "identical rows always share a split when streamed (split by a hash of the row)",
        )
    ]
    if found.missing_labels:
        findings.append(
            Finding(
                "missing labels",
                "warning",
                f"{found.missing_labels} row(s) have no label",
                "they are dropped before training",
            )
        )
    values = sorted({v for counts in found.label_counts for v in counts})
    if len(values) != 2:
        return findings + checks.label_values(pd.Series(values, name=d["label"]), classes=2)
    findings += checks.missing_values(sample, [d["label"], d["split_column"]])
    findings += _columns(sample, cfg, f"'{path}'")[0]
    counts = {s: dict(found.label_counts[i]) for i, s in enumerate(("train", "val", "test"))}
    return findings + checks.class_counts(counts)
