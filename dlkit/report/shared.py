"""The sections every run's page has, read from the run directory alone: summary, training curves,
gradient health, final metrics beside every baseline with the verdict, data cleaning, config."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np

from dlkit.report import plots
from dlkit.report.page import Figure, Section, Table
from dlkit.run import Run

MAX_LAYERS = 60  # rows of the gradient heat map; more are thinned evenly (and the page says so)


def read_checks(path: Path) -> list[dict]:
    """The lines of metrics.jsonl (one per validation check); a damaged line is skipped."""
    records = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def read_eval(run: Run) -> dict | None:
    path = run.path / "eval.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _size(n: int | None) -> str:
    if not n:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def summary(run: Run) -> Section:
    m = run.manifest
    data = m.get("data") or {}
    seconds = m.get("train_seconds")
    rows = [
        ["recipe", m.get("recipe")],
        ["run directory", str(run.path)],
        ["status", m.get("status")],
        ["started", m.get("created")],
        ["training time", f"{seconds:.1f} s ({seconds / 60:.1f} min)" if seconds else "-"],
        ["epochs run (best)", f"{m.get('epochs_run')} ({m.get('best_epoch')})"],
        ["stopped early", m.get("stopped_early")],
        ["device", f"{m.get('device')}" + (f" x {m['world_size']}" if m.get("world_size", 1) > 1 else "")],
        ["data", data.get("path")],
        [
            "data fingerprint",
            f"sha256 {str(data.get('sha256', ''))[:16]}... over {data.get('files')} file(s), "
            f"{_size(data.get('bytes'))} ({data.get('method', '-')})",
        ],
        ["seed", m.get("seed")],
        ["versions", f"dlkit {m.get('dlkit')}, torch {m.get('torch')}, Python {m.get('python')}"],
        ["platform", m.get("platform")],
        ["command line", shlex.join(str(a) for a in m.get("command", []))],
    ]
    return Section("Run summary", tables=[Table(["", "value"], rows)])


def _series(checks: list[dict], key: str) -> tuple[list, list]:
    xs = [c.get("step", i) for i, c in enumerate(checks) if isinstance(c.get(key), (int, float))]
    ys = [c[key] for c in checks if isinstance(c.get(key), (int, float))]
    return xs, ys


def kept_step(checks: list[dict], key: str, mode: str) -> int | None:
    """The step of the check training kept: the best validation `key` ("loss" or a metric) by `mode`."""
    steps, values = _series(checks, f"val_{key}")
    if not values:
        return None
    return steps[int(np.argmax(values) if mode == "max" else np.argmin(values))]


def curves(
    checks: list[dict], monitor: str, mode: str, folder: Path, select: tuple[str, str] | None = None
) -> Section:
    """Loss, monitored metric and learning rate against optimizer steps. The circled check is the one
    training kept: the best monitored value, or the best `select` value ((key, mode), e.g. ("loss",
    "min")) when the recipe picks its checkpoint by something else."""
    if not checks:
        return Section("Training curves", text=["metrics.jsonl has no validation checks yet."])
    fig, (a, b, c) = plots.figure(15, 4.2, 1, 3)
    for key, label in (("train_loss", "train loss"), ("val_loss", "validation loss")):
        xs, ys = _series(checks, key)
        a.plot(xs, ys, marker="o", markersize=3, label=label)
    a.set(title="Loss", xlabel="optimizer step", ylabel="loss (mean per example)")
    a.legend()
    xs, ys = _series(checks, f"val_{monitor}")
    b.plot(xs, ys, marker="o", markersize=3, label=f"validation {monitor}", color=plots.PALETTE[2])
    kept = kept_step(checks, *(select or (monitor, mode)))
    if kept in xs:
        best = xs.index(kept)
        label = "best check" if select is None else f"kept check (best validation {select[0]})"
        b.scatter([xs[best]], [ys[best]], s=90, facecolors="none", edgecolors="black", zorder=3, label=label)
    b.set(
        title=f"Monitored metric ({'higher' if mode == 'max' else 'lower'} is better)",
        xlabel="optimizer step",
        ylabel=monitor,
    )
    b.legend()
    xs, ys = _series(checks, "lr")
    c.plot(xs, ys, color=plots.PALETTE[3], marker="o", markersize=3, label="learning rate")
    c.set(title="Learning rate", xlabel="optimizer step", ylabel="lr (first parameter group)")
    c.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    c.legend()
    last = checks[-1]
    text = [
        f"{len(checks)} validation checks over {last.get('step')} optimizer steps "
        f"({last.get('epoch')} epochs); "
        f"each check wrote a line in metrics.jsonl and a checkpoint."
    ]
    return Section(
        "Training curves",
        text=text,
        figures=[
            Figure(
                plots.save(fig, folder, "curves"),
                "loss, monitored metric and learning rate per validation check",
            )
        ],
    )


def gradients(checks: list[dict], folder: Path) -> Section:
    """Per-layer mean gradient norms over checks as a heat map; checks with warnings marked."""
    with_grad = [c for c in checks if c.get("grad", {}).get("layers")]
    if not with_grad:
        return Section(
            "Gradient health", text=["no gradient samples (grad_monitor.enabled=false, or no check yet)."]
        )
    layers = list(with_grad[-1]["grad"]["layers"])
    thinned = len(layers) > MAX_LAYERS
    if thinned:
        layers = [layers[i] for i in np.linspace(0, len(layers) - 1, MAX_LAYERS).round().astype(int)]
    grid = np.array(
        [[c["grad"]["layers"].get(name, np.nan) for c in with_grad] for name in layers], dtype=float
    )
    logs = np.log10(np.where(grid > 0, grid, np.nan))
    height = min(16, 2.0 + 0.19 * len(layers))
    fig, ax = plots.figure(min(14, 5 + 0.25 * len(with_grad)), height)
    im = ax.imshow(logs, aspect="auto", cmap=plots.SEQUENTIAL, interpolation="nearest")
    ax.grid(False)
    ax.set_yticks(range(len(layers)), [plots.short(n, 32) for n in layers], fontsize=7)
    ticks = range(0, len(with_grad), max(1, len(with_grad) // 12))
    ax.set_xticks(list(ticks), [str(with_grad[i].get("step")) for i in ticks])
    ax.set(
        xlabel="validation check (at optimizer step)",
        ylabel="layer (input at top)",
        title="Mean gradient norm per layer",
    )
    fig.colorbar(im, ax=ax, label="log10(gradient L2 norm)")
    warned = [i for i, c in enumerate(with_grad) if c.get("grad_warnings")]
    for i in warned:
        ax.axvline(i, color=plots.PALETTE[1], linewidth=2, linestyle="--")
    if warned:
        ax.plot([], [], color=plots.PALETTE[1], linestyle="--", label="check with a warning")
        ax.legend(loc="upper right", fontsize=8)
    alerts = [f"step {c.get('step')}: {w}" for c in with_grad for w in c.get("grad_warnings", [])]
    last = with_grad[-1]["grad"]
    text = [
        f"last check: mean norm {last.get('mean', 0):.3g}, largest {last.get('max', 0):.3g}, earliest layers "
        f"{last.get('early', 0):.3g} vs last layers {last.get('late', 0):.3g}, "
        f"{last.get('nonfinite', 0)} non-finite."
    ]
    if thinned:
        text.append(f"{MAX_LAYERS} of {len(with_grad[-1]['grad']['layers'])} layers shown, evenly spaced.")
    good = [] if alerts else ["no vanishing or exploding gradients were detected at any check."]
    return Section(
        "Gradient health",
        text=text,
        alerts=alerts[:20] + ([f"... and {len(alerts) - 20} more warnings"] if len(alerts) > 20 else []),
        good=good,
        figures=[
            Figure(
                plots.save(fig, folder, "gradients"),
                "dark = small gradients; a dark band at the top means the earliest layers barely learn",
            )
        ],
    )


def final_metrics(result: dict | None) -> Section:
    """The model's test metrics with every baseline beside them, and the verdict in plain words."""
    from dlkit.jobs.evaluation import verdict_text

    if not result:
        return Section(
            "Final metrics", alerts=["no eval.json: the run has not been evaluated (dlkit evaluate RUN)."]
        )
    names = list(result.get("baselines", {}))
    strongest = result.get("strongest_baseline")
    columns = ["metric", "model", *[n + (" (strongest)" if n == strongest else "") for n in names]]
    rows, marked = [], set()
    for metric, value in result["metrics"].items():
        if not isinstance(value, float):
            continue
        if metric == result["monitor"]:
            marked.add(len(rows))
        rows.append(
            [
                metric + (" (monitored)" if metric == result["monitor"] else ""),
                value,
                *[result["baselines"][n].get(metric) for n in names],
            ]
        )
    text = [f"{result['split']} split, {result['examples']} examples, checkpoint {result.get('checkpoint')}."]
    verdict = verdict_text(result)
    section = Section("Final metrics and verdict", text=text, tables=[Table(columns, rows, marked)])
    if verdict is None:
        section.text.append("no baseline scored the monitored metric, so there is no verdict.")
    elif result.get("beats_baseline"):
        section.good.append(verdict[0].upper() + verdict[1:] + ".")
    else:
        section.alerts.append(verdict[0].upper() + verdict[1:] + ".")
    return section


def cleaning(state: dict) -> Section:
    """What the data stages did, as far as the recipe kept it in the run's state."""
    section = Section("Data cleaning")
    entries = state.get("cleaning_report")
    if isinstance(entries, list) and entries:
        rows = [
            [e.get("step"), ", ".join(map(str, e.get("columns", [])))[:120], e.get("count"), e.get("detail")]
            for e in entries
            if isinstance(e, dict)
        ]
        section.tables.append(Table(["step", "columns", "count", "detail"], rows))
    other = state.get("cleaning")
    if isinstance(other, dict) and other:
        section.tables.append(
            Table(
                ["what", "value"],
                [[k, json.dumps(v) if isinstance(v, (dict, list)) else v] for k, v in other.items()],
            )
        )
    if not section.tables:
        section.text.append(
            "this recipe keeps no cleaning report in the run (its data is read as given; "
            "`dlkit check` lists problems)."
        )
    return section


def config(run: Run) -> Section:
    text = (run.path / "config.yaml").read_text()
    return Section(
        "Resolved config", text=["config.yaml, re-runnable with --config."], code=text, collapsed=True
    )
