"""A tuning study's page: the trials table, the metric by trial, rough parameter importances, and a
link to each trial's own page. Reads trials.csv when the study wrote one, and each trial-* run folder."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from dlkit.report import plots, shared
from dlkit.report.compare import flatten
from dlkit.report.page import Figure, Link, Section, Table, write_page
from dlkit.run import Run

PARAM_PREFIXES = ("params_", "params.", "param_", "param.")


def is_study(path: Path) -> bool:
    return (
        path.is_dir()
        and not (path / "manifest.json").is_file()
        and ((path / "trials.csv").is_file() or any(path.glob("trial-*/manifest.json")))
    )


def _trial_rows(folder: Path) -> list[dict]:
    """One dict per trial: trials.csv's row when there is one, joined with what its run folder holds."""
    rows: dict[str, dict] = {}
    if (folder / "trials.csv").is_file():
        with open(folder / "trials.csv", newline="") as fh:
            for i, row in enumerate(csv.DictReader(fh)):
                number = row.get("number") or row.get("trial") or str(i)
                rows[f"trial-{int(float(number)):04d}" if number.replace(".", "").isdigit() else number] = (
                    dict(row)
                )
    for run_dir in sorted(folder.glob("trial-*")):
        if (run_dir / "manifest.json").is_file():
            rows.setdefault(run_dir.name, {})["_run"] = run_dir
    return [{"trial": name, **row} for name, row in sorted(rows.items())]


def _number(value) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


def build(folder: Path) -> Path:
    """Write STUDY/report/index.html; each trial without a page gets one first (linked from here)."""
    from dlkit.report import run_page

    out = folder / "report"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    trials = _trial_rows(folder)
    runs = {t["trial"]: Run.open(t["_run"]) for t in trials if "_run" in t}
    evals = {name: shared.read_eval(r) or {} for name, r in runs.items()}
    monitor = next((e["monitor"] for e in evals.values() if e.get("monitor")), None)
    mode = next((e.get("monitor_mode") for e in evals.values() if e.get("monitor_mode")), "max")
    csv_params = [k for t in trials for k in t if k.startswith(PARAM_PREFIXES)]
    params = list(dict.fromkeys(csv_params)) or _differing_keys(runs)
    configs = {name: flatten(r.config()) for name, r in runs.items()}
    values = {}
    for t in trials:
        value = _number(t.get("value"))
        if value is None and monitor:
            value = _number((evals.get(t["trial"], {}).get("metrics") or {}).get(monitor))
        values[t["trial"]] = value
    links = []
    for name, r in runs.items():
        page = r.path / "report" / "index.html"
        if not page.is_file():
            run_page.after_training(r.path, *_recipe_and_none(r))
        if page.is_file():
            links.append(Link(f"{name}: {monitor} {_fmt(values.get(name))}", f"../{name}/report/index.html"))

    def param(t, key):
        return t.get(key) if key in t else configs.get(t["trial"], {}).get(key)

    columns = ["trial", "state", "value", *[p.removeprefix("params_") for p in params]]
    rows = [
        [
            t["trial"],
            t.get("state", "complete" if t["trial"] in runs else "-"),
            values[t["trial"]],
            *[param(t, p) for p in params],
        ]
        for t in trials
    ]
    scored = {k: v for k, v in values.items() if v is not None}
    best = (max if mode == "max" else min)(scored, key=scored.get) if scored else None
    marked = {i for i, t in enumerate(trials) if t["trial"] == best}
    sections = [
        Section(
            "Trials",
            text=[
                f"{len(trials)} trials in {folder}; value: "
                + ("trials.csv's value" if any("value" in t for t in trials) else f"test {monitor}")
                + (f"; best: {best} ({_fmt(scored[best])})" if best else "")
            ],
            tables=[Table(columns, rows, marked)],
            links=links,
        ),
        _by_trial(trials, values, monitor, mode, out),
        _importances(trials, values, params, param, out),
    ]
    return write_page(
        out / "index.html",
        f"dlkit study: {folder.name}",
        f"{len(trials)} trials · {monitor or 'value'}",
        sections,
    )


def _recipe_and_none(run: Run):
    from dlkit.jobs.common import open_run

    _, recipe = open_run(run.path, [])
    return recipe, None


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def _differing_keys(runs: dict[str, Run]) -> list[str]:
    flats = [flatten(r.config()) for r in runs.values()]
    keys = sorted(set().union(*flats)) if flats else []
    return [k for k in keys if k not in ("data.path",) and len({repr(f.get(k)) for f in flats}) > 1]


def _by_trial(trials, values, monitor, mode, out: Path) -> Section:
    names = [t["trial"] for t in trials if values[t["trial"]] is not None]
    if not names:
        return Section("Metric by trial", text=["no trial has a value yet."])
    ys = [values[n] for n in names]
    running = np.maximum.accumulate(ys) if mode == "max" else np.minimum.accumulate(ys)
    fig, ax = plots.figure(max(6.4, 0.3 * len(names)), 4.0)
    ax.plot(range(len(names)), ys, "o", label="trial")
    ax.plot(range(len(names)), running, "-", color=plots.PALETTE[1], label="best so far")
    step = max(1, len(names) // 15)
    ax.set_xticks(range(0, len(names), step), [n.removeprefix("trial-") for n in names[::step]])
    ax.set(title=f"{monitor or 'value'} by trial", xlabel="trial number", ylabel=monitor or "value")
    ax.legend()
    return Section(
        "Metric by trial",
        figures=[
            Figure(
                plots.save(fig, out, "by-trial"), "each dot one trial; the line the best value found so far"
            )
        ],
    )


def _importances(trials, values, params, param, out: Path) -> Section:
    """Impurity importances of a random forest fitted from the parameters to the value (seeded)."""
    from sklearn.ensemble import RandomForestRegressor

    done = [t for t in trials if values[t["trial"]] is not None]
    if len(done) < 5 or not params:
        return Section(
            "Parameter importances", text=["needs at least 5 finished trials and a parameter that varies."]
        )
    columns = []
    for p in params:
        raw = [param(t, p) for t in done]
        nums = [_number(v) for v in raw]
        if all(n is not None for n in nums):
            columns.append(nums)
        else:  # categorical: codes in order of first appearance
            codes = {v: i for i, v in enumerate(dict.fromkeys(map(str, raw)))}
            columns.append([codes[str(v)] for v in raw])
    x = np.array(columns, dtype=float).T
    forest = RandomForestRegressor(n_estimators=200, random_state=0).fit(
        x, [values[t["trial"]] for t in done]
    )
    order = np.argsort(forest.feature_importances_)
    fig, ax = plots.figure(6.4, 1.2 + 0.4 * len(params))
    ax.barh([params[i].removeprefix("params_") for i in order], forest.feature_importances_[order])
    ax.set(
        title="Parameter importance",
        xlabel="share of the value's variance explained (random forest)",
        ylabel="parameter",
    )
    text = [f"from {len(done)} trials: rough with few trials, a hint of where to search, not a proof."]
    return Section(
        "Parameter importances", text=text, figures=[Figure(plots.save(fig, out, "importances"), "")]
    )
