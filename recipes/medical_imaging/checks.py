"""`dlkit check medical-imaging`: the layout, patient leakage between given splits, every scan and mask
read (unreadable files, shape mismatches, mask labels), and the balance of labels per split."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
from dlkit_recipes.medical_imaging import readers
from dlkit_recipes.medical_imaging.data import shape_mismatch
from dlkit_recipes.medical_imaging.layout import (
    Case,
    assign,
    groups_of,
    leak_message,
    list_cases,
    patient_leaks,
)

from dlkit.data.checks import class_balance
from dlkit.errors import UserError
from dlkit.recipe import Finding


def findings(path: Path, cfg: dict, read_and_split: Callable[[Path], list[Finding]]) -> list[Finding]:
    """All findings; `read_and_split` (the default check: load the data) runs when nothing is fatal."""
    try:
        cases = list_cases(path, cfg)
    except UserError as exc:
        return [Finding("data listed", "fatal", exc.message, exc.hint or "")]
    found = [Finding("data listed", "ok", f"{len(cases)} cases")]
    infos, unreadable = {}, []
    for i, c in enumerate(cases):
        try:
            infos[i] = readers.probe(c.image)
        except UserError as exc:
            unreadable.append(exc.message)
    found += leakage(cases)
    found += contents(cases, infos, unreadable, cfg["task"] == "segmentation")
    if cfg["task"] == "classification" and len(infos) == len(cases):
        found += balance(cases, [infos[i] for i in range(len(cases))], cfg)
    if not unreadable and not any(f.severity == "fatal" for f in found):
        found += read_and_split(path)
    return found


def leakage(cases: list[Case]) -> list[Finding]:
    if not any(c.patient for c in cases):
        return [
            Finding(
                "patient leakage",
                "info",
                "no patient_id column: each scan counts as its own patient "
                "(DICOM PatientIDs, hashed, group a patient's series)",
                "add a patient_id column so no patient lands in two splits",
            )
        ]
    given = [c.split for c in cases]
    if not any(given):
        patients = len({c.patient for c in cases if c.patient})
        return [Finding("patient leakage", "ok", f"{patients} patients; dlkit splits by patient")]
    leaks = patient_leaks(cases, given)
    if leaks:
        return [
            Finding(
                "patient leakage",
                "fatal",
                leak_message(cases, given, leaks),
                "give all of a patient's rows the same split",
            )
        ]
    return [Finding("patient leakage", "ok", "no patient appears in two of the given splits")]


def contents(cases: list[Case], infos: dict, unreadable: list[str], segmentation: bool) -> list[Finding]:
    """Read every scan (and mask): unreadable files, shape mismatches, mask labels, all-background masks."""
    mismatched, bad_labels, values, empty = [], [], set(), 0
    for i, c in enumerate(cases):
        if i not in infos:
            continue
        try:
            scan = readers.read_scan(c.image)
            if not segmentation:
                continue
            labels, stored = readers.read_mask(c.mask)
        except UserError as exc:
            unreadable.append(exc.message)
            continue
        mismatch = shape_mismatch(c, scan, labels, stored)
        if mismatch:
            mismatched.append(mismatch.message)
            continue
        try:
            vals = readers.mask_values(labels, c.mask)
        except UserError as exc:
            bad_labels.append(exc.message)
            continue
        values |= vals
        empty += vals <= {0}
    checks = [("files readable", unreadable)]
    if segmentation:
        checks += [("mask/image shapes", mismatched), ("mask labels", bad_labels)]
    found = []
    for name, problems in checks:
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            found.append(
                Finding(name, "fatal", f"{len(problems)} problem(s): " + "; ".join(problems[:3]) + more)
            )
        else:
            found.append(Finding(name, "ok", "all good"))
    if segmentation:
        shown = ", ".join(map(str, sorted(values)))
        found.append(
            Finding(
                "label balance",
                "info",
                f"mask labels {shown}; {empty} of {len(cases)} masks are all background",
            )
        )
    return found


def balance(cases: list[Case], infos: list, cfg: dict) -> list[Finding]:
    """Labels per split as training will split them (skipped when the splits cannot be made)."""
    try:
        splits = assign(cases, groups_of(cases, infos), cfg)
    except UserError:
        return []  # leakage (or no train split) is reported on its own
    labels = {
        s: pd.Series([c.label for c, cs in zip(cases, splits, strict=True) if cs == s], dtype="object")
        for s in ("train", "val", "test")
    }
    return class_balance(labels)
