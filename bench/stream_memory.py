"""tabular-fraud on a table several times larger than the memory the training process may use.

Writes a synthetic fraud-like CSV (numbers with missing values and heavy tails, categoricals, a yes/no
column, an id, ~1-2% fraud that depends on the features) under a temporary folder, then runs
`dlkit train tabular-fraud --data FILE` with a short step budget in a child process under a data-size
limit (RLIMIT_DATA, `ulimit -d`: RLIMIT_AS is useless beside torch's huge virtual mappings), with
`data.stream_above` left at auto (which reads the limit). The same command on a
small table (the in-memory path, no limit) gives the memory the whole table would need. Reported: file
size, the limit, peak RSS of each run (the child's own ru_maxrss), wall time and training rows/s, and
whether the big run streamed (its eval.json says so). The files are deleted afterwards.

    python bench/stream_memory.py [--quick] [--size-mb 4000] [--limit-mb 1800] [--steps 200] [--keep]

The limit counts address space, not resident memory: torch, pandas and scikit-learn imports take ~0.8 GB
of it (~0.6 GB resident), and Arrow's allocator would reserve ~1 GB more (the child runs with
ARROW_DEFAULT_MEMORY_POOL=system). Val and test are 2% each (HELD_OUT). --quick: a 400 MB table and 100
steps, a smoke run of the benchmark (a few minutes on 2 busy cores; the table is not larger than the
limit there).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 200_000
# val and test: 2% each (~1.5M rows each of a 4 GB table), read at every check, calibration and test
HELD_OUT = 0.02
CATEGORIES = {
    "merchant_category": [
        "grocery",
        "fuel",
        "travel",
        "electronics",
        "jewelry",
        "gift_cards",
        "dining",
        "other",
    ],
    "country": ["DE", "FR", "PL", "ES", "IT", "NL", "GB", "US", "BR", "NG", "CN", "IN"],
    "device": ["pos_terminal", "mobile", "desktop", "tablet"],
}


def fraud_chunk(rng: np.random.Generator, start: int, n: int) -> pd.DataFrame:
    """`n` transactions; fraud more likely for large online amounts, young accounts, far from home."""
    amount = np.round(rng.lognormal(3.5, 1.2, n), 2)
    online = rng.random(n) < 0.4
    age = rng.integers(1, 4000, n)
    distance = np.round(rng.exponential(8.0, n), 1)
    jewelry = rng.random(n) < 0.05
    logit = -5.2 + 0.6 * np.log1p(amount) / 3 + 1.2 * online - 0.0006 * age + 0.03 * distance + 1.5 * jewelry
    frame = pd.DataFrame(
        {
            "transaction_id": [f"T{i:010d}" for i in range(start, start + n)],
            "amount": np.where(rng.random(n) < 0.02, np.nan, amount),
            "merchant_category": np.where(
                jewelry,
                "jewelry",
                rng.choice(CATEGORIES["merchant_category"], n, p=[0.3, 0.2, 0.1, 0.1, 0, 0.1, 0.15, 0.05]),
            ),
            "country": rng.choice(CATEGORIES["country"], n),
            "device": np.where(rng.random(n) < 0.03, None, rng.choice(CATEGORIES["device"], n)),
            "is_online": np.where(online, "yes", "no"),
            "account_age_days": age,
            "tx_last_24h": rng.poisson(2.0, n),
            "distance_from_home_km": distance,
            "hour": rng.integers(0, 24, n),
        }
    )
    frame["is_fraud"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def write_table(path: Path, size_mb: float, seed: int = 0) -> int:
    """A CSV of about `size_mb` MB; its row count."""
    rng, rows = np.random.default_rng(seed), 0
    with open(path, "w") as fh:
        while fh.tell() < size_mb * 2**20:
            fraud_chunk(rng, rows, CHUNK).to_csv(fh, index=False, header=rows == 0)
            rows += CHUNK
    return rows


def train(data: Path, out: Path, steps: int, limit_mb: float | None) -> dict:
    """`dlkit train` in a child process (under RLIMIT_DATA when `limit_mb`); its peak RSS and result."""

    def cap() -> None:
        if limit_mb:
            resource.setrlimit(resource.RLIMIT_DATA, (int(limit_mb * 2**20),) * 2)

    command = [
        str(Path(sys.executable).parent / "dlkit"), "train", "tabular-fraud",
        "--data", str(data), "--out", str(out),
        "--json", f"train.max_steps={steps}", "train.val_every=1000000", "report.enabled=false",
        f"data.val_fraction={HELD_OUT}", f"data.test_fraction={HELD_OUT}",
    ]  # fmt: skip
    env = {
        **os.environ,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "HF_HUB_OFFLINE": "1",
        "ARROW_DEFAULT_MEMORY_POOL": "system",  # Arrow's jemalloc reserves ~1 GB of address space
    }
    started = time.perf_counter()
    with open(out.with_suffix(".out"), "wb") as stdout, open(out.with_suffix(".err"), "wb") as stderr:
        child = subprocess.Popen(
            command, preexec_fn=cap, stdout=stdout, stderr=stderr, env=env, cwd=out.parent
        )
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS, not the largest so far
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = out.with_suffix(".err").read_text(errors="replace").strip().splitlines()[-12:]
        return {"ok": False, "exit": code, "wall_s": round(wall, 1), "error": " | ".join(tail)}
    stdout = out.with_suffix(".out").read_text()
    result = json.loads(stdout)
    cfg = (out / "config.yaml").read_text()
    batch = int(
        next(line.split(":")[1] for line in cfg.splitlines() if line.strip().startswith("batch_size:"))
    )
    return {
        "ok": True,
        "wall_s": round(wall, 1),
        "train_s": result["train_seconds"],
        "train_rows_per_s": round(steps * batch / result["train_seconds"]),
        "auprc": round(result["metrics"]["average_precision"], 4),
        "streamed": "streamed" in result["details"],
        "test_rows": result["examples"],
        "peak_rss_mb": round(usage.ru_maxrss / 1024),  # Linux: KiB
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=4000, help="size of the big CSV")
    parser.add_argument("--limit-mb", type=float, default=1800, help="RLIMIT_DATA of the big run")
    parser.add_argument("--small-mb", type=float, default=100, help="size of the in-memory comparison CSV")
    parser.add_argument("--steps", type=int, default=200, help="training steps of each run")
    parser.add_argument("--quick", action="store_true", help="400 MB table, 100 steps (a few minutes)")
    parser.add_argument("--tmp", default=None, help="folder for the tables and runs (default: system temp)")
    parser.add_argument("--keep", action="store_true", help="keep the tables, runs and logs (says where)")
    args = parser.parse_args()
    if args.quick:
        args.size_mb, args.steps, args.small_mb = 400, 100, 50
    folder = Path(tempfile.mkdtemp(prefix="dlkit_stream_", dir=args.tmp))
    try:
        small, big = folder / "small.csv", folder / "big.csv"
        small_rows = write_table(small, args.small_mb, seed=1)
        started = time.perf_counter()
        big_rows = write_table(big, args.size_mb, seed=2)
        print(
            f"wrote {big_rows:,} rows ({big.stat().st_size / 2**20:,.0f} MB) "
            f"in {time.perf_counter() - started:.0f} s"
        )
        rows = []
        for name, data, limit in (("in memory", small, None), ("streamed", big, args.limit_mb)):
            rows.append((name, data, limit, train(data, folder / name.replace(" ", "_"), args.steps, limit)))
        print_table(rows, small_rows, big_rows)
    finally:
        if args.keep:
            print(f"kept: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def print_table(rows: list, small_rows: int, big_rows: int) -> None:
    counts = {"in memory": small_rows, "streamed": big_rows}
    print(f"{'run':<10} {'rows':>12} {'file MB':>8} {'limit MB':>9} {'peak RSS MB':>12} {'RSS/file':>9} "
          f"{'wall s':>7} {'train rows/s':>13} {'AUPRC':>7}  path")  # fmt: skip
    for name, data, limit, r in rows:
        size = data.stat().st_size / 2**20
        if not r["ok"]:
            print(
                f"{name:<10} {counts[name]:>12,} {size:>8.0f} {limit or '-':>9} "
                f"FAILED exit {r['exit']}: {r['error']}"
            )
            continue
        rss = r["peak_rss_mb"]
        print(
            f"{name:<10} {counts[name]:>12,} {size:>8.0f} {limit or '-':>9} {rss:>12,} {rss / size:>9.2f} "
            f"{r['wall_s']:>7} {r['train_rows_per_s']:>13,} {r['auprc']:>7}  "
            f"{'streamed' if r['streamed'] else 'in memory'}"
        )
    (_, small, _, mem), (_, big, _, streamed) = rows
    if mem["ok"] and streamed["ok"]:
        need = mem["peak_rss_mb"] / (small.stat().st_size / 2**20) * big.stat().st_size / 2**20
        print(
            f"the in-memory path would need ~{need:,.0f} MB for the big table "
            f"(its RSS/file ratio); streaming peaked at {streamed['peak_rss_mb']:,.0f} MB"
        )


if __name__ == "__main__":
    main()
