"""A page comparing runs: validation curves overlaid, test metrics side by side, config differences."""

from __future__ import annotations

import os
from pathlib import Path

from dlkit.report import plots, shared
from dlkit.report.page import Figure, Link, Section, Table, write_page
from dlkit.run import Run


def flatten(cfg: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in cfg.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def default_folder(runs: list[Path]) -> Path:
    """Beside the first run: compare-<run names> (never the current directory)."""
    names = "-vs-".join(r.name for r in runs[:3]) + (f"-and-{len(runs) - 3}-more" if len(runs) > 3 else "")
    return runs[0].resolve().parent / f"compare-{names}"


def _labels(runs: list[Run]) -> list[str]:
    """Run folder names, made unique with their parent where two share a name."""
    names = [r.path.name for r in runs]
    return [
        f"{r.path.parent.name}/{r.path.name}" if names.count(r.path.name) > 1 else r.path.name for r in runs
    ]


def build(run_paths: list[Path], out: Path) -> Path:
    runs = [Run.open(p) for p in run_paths]
    labels = _labels(runs)
    evals = [shared.read_eval(r) or {} for r in runs]
    checks = [shared.read_checks(r.path / "metrics.jsonl") for r in runs]
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    overview = Table(
        [
            "run",
            "recipe",
            "monitored metric",
            "test value",
            "strongest baseline",
            "beats it",
            "train time (s)",
        ],
        [
            [
                label,
                r.recipe,
                e.get("monitor"),
                (e.get("metrics") or {}).get(e.get("monitor")),
                e.get("strongest_baseline"),
                e.get("beats_baseline"),
                r.manifest.get("train_seconds"),
            ]
            for label, r, e in zip(labels, runs, evals, strict=True)
        ],
    )
    links = [
        Link(f"{label}: its own report", os.path.relpath(r.path / "report" / "index.html", out))
        for label, r in zip(labels, runs, strict=True)
        if (r.path / "report" / "index.html").is_file()
    ]
    sections = [
        Section("Runs", tables=[overview], links=links, text=[f"{len(runs)} runs: {', '.join(labels)}."]),
        _curves(labels, checks, evals, runs, out),
        _metrics(labels, evals),
        _config_diff(labels, runs),
    ]
    return write_page(out / "index.html", "dlkit comparison", " vs ".join(labels), sections)


def _curves(labels, checks, evals, runs, out: Path) -> Section:
    fig, (a, b) = plots.figure(13, 4.4, 1, 2)
    monitors = {e.get("monitor") or r.config().get("monitor") for e, r in zip(evals, runs, strict=True)}
    for i, (label, cs, e) in enumerate(zip(labels, checks, evals, strict=True)):
        colour = plots.PALETTE[i % len(plots.PALETTE)]
        xs, ys = shared._series(cs, "val_loss")
        a.plot(xs, ys, color=colour, label=f"{label} val")
        xs, ys = shared._series(cs, "train_loss")
        a.plot(xs, ys, color=colour, linestyle=":", label=f"{label} train")
        monitor = e.get("monitor")
        if monitor:
            xs, ys = shared._series(cs, f"val_{monitor}")
            b.plot(xs, ys, color=colour, marker="o", markersize=3, label=f"{label} ({monitor})")
    a.set(title="Loss (solid: validation, dotted: train)", xlabel="optimizer step", ylabel="loss")
    a.legend()
    b.set(
        title="Validation monitored metric",
        xlabel="optimizer step",
        ylabel=" / ".join(sorted(m for m in monitors if m)) or "metric",
    )
    b.legend()
    return Section(
        "Training curves overlaid", figures=[Figure(plots.save(fig, out, "curves"), "one colour per run")]
    )


def _metrics(labels, evals) -> Section:
    names = list(
        dict.fromkeys(k for e in evals for k, v in (e.get("metrics") or {}).items() if isinstance(v, float))
    )
    rows, marked = [], set()
    for name in names:
        values = [(e.get("metrics") or {}).get(name) for e in evals]
        if any(name == e.get("monitor") for e in evals):
            marked.add(len(rows))
        rows.append([name, *values])
    for e_index, e in enumerate(evals):  # the strongest baseline of each run, for scale
        strongest = e.get("strongest_baseline")
        if strongest and e.get("monitor"):
            row = [f"{labels[e_index]}: baseline {strongest} ({e['monitor']})"] + [None] * len(evals)
            row[1 + e_index] = e["baselines"][strongest].get(e["monitor"])
            rows.append(row)
    return Section(
        "Test metrics side by side",
        text=["the monitored metric is highlighted; the last rows give each run's strongest baseline."],
        tables=[Table(["metric", *labels], rows, marked)],
    )


def _config_diff(labels, runs) -> Section:
    flats = [flatten(r.config()) for r in runs]
    keys = sorted(set().union(*flats))
    differing = [k for k in keys if len({repr(f.get(k, "(absent)")) for f in flats}) > 1]
    same = [k for k in keys if k not in differing]
    rows = [[k, *[f.get(k, "(absent)") for f in flats]] for k in differing]
    tables = [Table(["config key", *labels], rows, set(range(len(rows))), caption="keys whose values differ")]
    tables.append(
        Table(
            ["config key", "value (same in every run)"],
            [[k, flats[0].get(k)] for k in same],
            caption="keys that are the same",
        )
    )
    text = [
        f"{len(differing)} of {len(keys)} config keys differ."
        if differing
        else "the runs' configs are identical."
    ]
    return Section("Config differences", text=text, tables=tables)
