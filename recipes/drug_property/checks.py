"""`dlkit check drug-property`: readability, the SMILES and target columns, invalid SMILES (share, rows),
repeated and conflicting molecules, scaffold diversity (share of the largest scaffold), each target's
distribution (class balance; spread and outliers), and the split: sizes, and leakage (the same
canonical molecule in train and test) when the data names its splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from dlkit_recipes.drug_property import chem, reading
from dlkit_recipes.drug_property.data import assign

from dlkit.data.features import Report
from dlkit.errors import UserError
from dlkit.recipe import Finding

IQR_K = 3.0  # a target value beyond 3 interquartile ranges of the quartiles is an outlier


def check_molecules(path: Path, cfg: dict) -> list[Finding]:
    d = cfg["data"]
    given_splits = d["split"] == "column"
    try:
        frame, found = reading.read_molecules(path, cfg, use_split_column=given_splits)
        given_splits = given_splits or bool(frame[reading.GIVEN].notna().any())  # train/val/test files
        kinds = reading.task_kinds(frame, found["targets"], d["task_types"])
        y_all = reading.numeric_targets(frame, found["targets"], kinds)
    except UserError as exc:
        return [Finding("data readable", "fatal", exc.message, exc.hint or "")]
    tasks = ", ".join(f"{t} ({k})" for t, k in zip(found["targets"], kinds, strict=True))
    findings = [
        Finding("columns", "ok", f"{len(frame)} rows; SMILES in '{found['smiles']}'; targets: {tasks}")
    ]
    report = Report()
    valid, mols, _ = reading.standardise_rows(frame, found["smiles"], report)
    findings.append(_invalid(len(frame), report))
    if not mols:
        return findings + [Finding("molecules", "fatal", "no valid molecule", "fix the SMILES column")]
    y = y_all[frame.index.get_indexer(valid.index)]
    keep, merged, _ = reading.merge_duplicates(valid, y, kinds, d["duplicates"], report)
    findings.append(_duplicates(report, len(valid) - len(keep)))
    mols = [mols[i] for i in keep]
    scaffolds = [chem.scaffold(m) for m in mols]
    findings.append(_diversity(scaffolds))
    for j, (name, kind) in enumerate(zip(found["targets"], kinds, strict=True)):
        findings.append(_distribution(name, kind, merged[:, j]))
    method = "column" if given_splits else d["split"]
    parts = assign(method, valid[reading.GIVEN].iloc[keep].tolist(), scaffolds, cfg)
    sizes = ", ".join(f"{len(rows)} {s}" for s, rows in parts.items())
    findings.append(Finding("split", "ok" if parts["train"] else "fatal", f"{method}: {sizes}"))
    for j, (name, kind) in enumerate(zip(found["targets"], kinds, strict=True)):
        if kind == "classification":
            findings.append(_class_split(name, merged[:, j], parts))
    if given_splits:
        findings.append(_leakage(valid["canonical"].tolist(), valid[reading.GIVEN].tolist()))
    return findings


def _invalid(rows: int, report: Report) -> Finding:
    bad = next((e for e in report.entries if e["step"] == "invalid SMILES skipped"), None)
    if bad is None:
        return Finding("invalid SMILES", "ok", f"all {rows} molecules parse and standardise")
    share = bad["count"] / rows
    return Finding(
        "invalid SMILES",
        "warning" if share < 0.5 else "fatal",
        f"{bad['count']} of {rows} ({share:.1%}) not valid: {bad['detail']}",
        "they are skipped in training; fix them to keep them",
    )


def _duplicates(report: Report, repeated: int) -> Finding:
    conflict = next((e for e in report.entries if e["step"].startswith("conflicting duplicates")), None)
    if conflict:
        return Finding(
            "duplicates",
            "warning",
            f"{repeated} repeated molecule row(s) after standardisation; {conflict['count']} molecule(s) "
            f"with conflicting targets, first at {conflict['detail']}",
            "replicates are merged; conflicting ones averaged (data.duplicates=mean) or dropped (=drop)",
        )
    if repeated:
        return Finding("duplicates", "info", f"{repeated} repeated molecule row(s), consistent", "merged")
    return Finding("duplicates", "ok", "every molecule appears once after standardisation")


def _diversity(scaffolds: list[str]) -> Finding:
    names, counts = np.unique(scaffolds, return_counts=True)
    top = int(np.argmax(counts))
    share = counts[top] / len(scaffolds)
    message = (
        f"{len(names)} Bemis-Murcko scaffolds for {len(scaffolds)} molecules; the largest "
        f"('{names[top] or 'acyclic'}') holds {share:.1%}"
    )
    if share > 0.5 or len(names) < 10:
        return Finding(
            "scaffold diversity",
            "warning",
            message,
            "a scaffold split cannot separate so few scaffolds well; consider data.split=random",
        )
    return Finding("scaffold diversity", "ok", message)


def _distribution(name: str, kind: str, values: np.ndarray) -> Finding:
    seen = values[~np.isnan(values)]
    missing = len(values) - len(seen)
    gap = f"; {missing} missing (masked)" if missing else ""
    if not len(seen):
        return Finding(
            f"target {name}", "fatal", "no value", "fill the column or leave it out of data.targets"
        )
    if kind == "classification":
        positives = int(seen.sum())
        severity = "warning" if min(positives, len(seen) - positives) < 10 else "ok"
        return Finding(
            f"target {name}",
            severity,
            f"binary: {positives} of {len(seen)} are 1 ({positives / len(seen):.1%}){gap}",
            "fewer than 10 of a class makes AUROC noisy; add data" if severity == "warning" else "",
        )
    q1, q3 = np.percentile(seen, [25, 75])
    low, high = q1 - IQR_K * (q3 - q1), q3 + IQR_K * (q3 - q1)
    outliers = int(((seen < low) | (seen > high)).sum())
    message = (
        f"regression: mean {seen.mean():.3g}, sd {seen.std():.3g}, range {seen.min():.3g} to {seen.max():.3g}"
        f"{gap}; {outliers} outlier(s) beyond [{low:.3g}, {high:.3g}]"
    )
    if outliers:
        return Finding(f"target {name}", "warning", message, "check units and typos; outliers weigh on MSE")
    return Finding(f"target {name}", "ok", message)


def _class_split(name: str, values: np.ndarray, parts: dict) -> Finding:
    counts = []
    single = []
    for split, rows in parts.items():
        seen = values[rows][~np.isnan(values[rows])]
        counts.append(f"{split} {int(seen.sum())}/{len(seen)}")
        if len(seen) and seen.min() == seen.max():
            single.append(split)
    if single:
        return Finding(
            f"class balance {name}",
            "warning",
            f"positives: {', '.join(counts)}; one class only in {', '.join(single)}",
            "AUROC is undefined there; use more data or another split",
        )
    return Finding(f"class balance {name}", "ok", f"positives: {', '.join(counts)}")


def _leakage(canonical: list[str], splits: list[str | None]) -> Finding:
    train = {c for c, s in zip(canonical, splits, strict=True) if s in (None, "train")}
    test = {c for c, s in zip(canonical, splits, strict=True) if s == "test"}
    leaked = sorted(train & test)
    if not leaked:
        return Finding("train/test leakage", "ok", "no test molecule is also in train")
    return Finding(
        "train/test leakage",
        "warning",
        f"{len(leaked)} test molecule(s) are also in train after standardisation, e.g. {leaked[0]}",
        "remove them from test (their score measures memory), or use data.split=scaffold",
    )
