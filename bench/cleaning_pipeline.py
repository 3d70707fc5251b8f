"""dlkit's cleaning + feature stage against the same steps written directly with pandas/scikit-learn.

A table of ROWS x 30 columns as read from a file (16 numeric with missing values, heavy tails and
outliers, 6 low- and 2 high-cardinality categoricals, 3 yes/no columns, 2 timestamps, 1 id) goes
through: drop exact duplicates; split 70/15/15; fit on train (log1p of skewed columns, IQR clipping,
median imputation with indicators, rare categories -> other, one-hot / frequency encoding, datetime
parts, standard scaling); transform each split into a float32 matrix. The hand-written side is given
the column types, dlkit infers them. Runs alternate (pandas, dlkit, pandas, dlkit...) in one process,
each on a fresh copy of the table; each reports its time and its peak memory above the memory held
before it, table included (Linux VmHWM, reset per run).

Then `dlkit predict` throughput: a model trained on the sample data scores a CSV of PREDICT_ROWS
transactions end to end (read in chunks, clean, MLP, records, CSV out), and the same rows in memory
(features + model only).

    python bench/cleaning_pipeline.py [--rows 1000000] [--rounds 2] [--predict-rows 200000]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import importlib.util
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow

from dlkit import console
from dlkit.config import resolve
from dlkit.data.cleaning import CLEAN_OPTIONS, CleaningPipeline, duplicate_rows

ROOT = Path(__file__).resolve().parents[1]
SKEWED = [f"amount_{i}" for i in range(8)]
NORMAL = [f"score_{i}" for i in range(6)]
COUNTS = ["visits", "items"]
LOW_CARD = [f"category_{i}" for i in range(6)]
HIGH_CARD = ["merchant", "customer_city"]
FLAGS = ["online", "card_present", "is_weekend_promo"]
STAMPS = ["created_at", "first_seen"]


# --- data -----------------------------------------------------------------------------------------
def make_table(rows: int, seed: int = 0) -> pd.DataFrame:
    """30 columns as pandas reads them from a CSV: floats with NaN, ints, and str columns."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {"transaction_id": pd.array([f"T{i:09d}" for i in range(rows)], dtype="str")}
    for name in SKEWED:
        values = rng.lognormal(3, 1.2, rows)
        values[rng.random(rows) < 0.001] *= 1000
        values[rng.random(rows) < 0.02] = np.nan
        data[name] = values
    for name in NORMAL:
        values = rng.normal(0, 1, rows)
        values[rng.random(rows) < 0.01] = np.nan
        data[name] = values
    for name in COUNTS:
        data[name] = rng.poisson(3, rows)

    def strings(choices: np.ndarray, p: np.ndarray | None, missing: float) -> pd.Series:
        values = pd.Series(choices[rng.choice(len(choices), size=rows, p=p)], dtype="str")
        return values.mask(rng.random(rows) < missing)

    for name in LOW_CARD:
        shares = np.array([30, 20, 15, 10, 10, 8, 6, 0.99, 0.01])
        data[name] = strings(np.array([f"{name[-1]}{c}" for c in "abcdefghi"]), shares / shares.sum(), 0.01)
    for name in HIGH_CARD:
        zipf = 1 / np.arange(1, 5001) ** 1.1
        data[name] = strings(np.array([f"m{i:05d}" for i in range(5000)]), zipf / zipf.sum(), 0.005)
    for name in FLAGS:
        data[name] = strings(np.array(["yes", "no"]), None, 0.01)
    start = np.datetime64("2024-01-01T00:00:00")
    for name in STAMPS:
        seconds = rng.integers(0, 365 * 86400, rows).astype("timedelta64[s]")
        data[name] = pd.Series(
            np.datetime_as_string(start + seconds).astype(object), dtype="str"
        ).str.replace("T", " ")
    frame = pd.DataFrame(data)
    frame["label"] = (rng.random(rows) < 0.015).astype(int)
    repeats = frame.iloc[rng.choice(rows, size=rows // 200, replace=False)]
    return pd.concat([frame.iloc[: rows - len(repeats)], repeats], ignore_index=True)


def split_rows(n: int, seed: int = 1) -> list[np.ndarray]:
    """Row positions of a 70/15/15 train/val/test split."""
    order = np.random.default_rng(seed).permutation(n)
    cuts = [int(n * 0.7), int(n * 0.85)]
    return [np.sort(part) for part in np.split(order, cuts)]


# --- the two contestants: drop duplicates, split, fit on train, transform each split ------------------
def run_dlkit(holder: list[pd.DataFrame], opts: dict) -> list[np.ndarray]:
    """dlkit works on row positions of the one table: no deduplicated copy, no split copies."""
    frame = holder.pop()
    kept = np.flatnonzero(~duplicate_rows(frame))
    parts = [kept[rows] for rows in split_rows(len(kept))]
    pipeline = CleaningPipeline.fit(frame, opts, exclude=["label"], rows=parts[0])
    return [pipeline.transform(frame, rows=rows).numeric for rows in parts]


def run_pandas(holder: list[pd.DataFrame], opts: dict) -> list[np.ndarray]:
    frame = holder.pop().drop_duplicates()
    parts = [frame.iloc[rows] for rows in split_rows(len(frame))]
    del frame
    fitted = fit_by_hand(parts[0], opts)
    return [transform_by_hand(parts.pop(0), fitted) for _ in range(3)]


def fit_by_hand(train: pd.DataFrame, opts: dict) -> dict:
    """The same statistics by hand: pandas for column logic, scikit-learn transformers where they exist."""
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    fitted: dict = {"numeric": {}, "flags": {}, "shares": {}}
    for name in SKEWED + NORMAL + COUNTS:
        observed = train[name].dropna().astype(float)
        log = bool(observed.min() >= 0 and observed.skew() > opts["skew_threshold"])
        observed = np.log1p(observed) if log else observed
        q1, q3 = observed.quantile([0.25, 0.75])
        low, high = q1 - opts["outlier_iqr_k"] * (q3 - q1), q3 + opts["outlier_iqr_k"] * (q3 - q1)
        fitted["numeric"][name] = (
            log,
            low,
            high,
            observed.clip(low, high).median(),
            train[name].isna().any(),
        )
    for name in FLAGS:
        fitted["flags"][name] = float((train[name] == "yes")[train[name].notna()].mean() >= 0.5)
    for name in HIGH_CARD:
        fitted["shares"][name] = train[name].fillna("missing").value_counts(normalize=True)
    fitted["scaler"] = StandardScaler().fit(numeric_by_hand(train, fitted))
    fitted["encoder"] = OneHotEncoder(
        min_frequency=opts["rare_min_count"],
        handle_unknown="infrequent_if_exist",
        sparse_output=False,
        dtype=np.float32,
    )
    fitted["encoder"].fit(train[LOW_CARD].fillna("missing").astype(object))
    return fitted


def numeric_by_hand(frame: pd.DataFrame, fitted: dict) -> np.ndarray:
    columns = []
    for name, (log, low, high, median, indicator) in fitted["numeric"].items():
        values = frame[name].astype(float)
        values = np.log1p(values) if log else values
        columns.append(values.clip(low, high).fillna(median).to_numpy(np.float32))
        if indicator:
            columns.append(frame[name].isna().to_numpy(np.float32))
    for name, fill in fitted["flags"].items():
        flag = (frame[name] == "yes").astype(float).mask(frame[name].isna())
        columns += [flag.fillna(fill).to_numpy(np.float32), frame[name].isna().to_numpy(np.float32)]
    for name in STAMPS:
        stamps = pd.to_datetime(frame[name], format="%Y-%m-%d %H:%M:%S")
        columns += [
            getattr(stamps.dt, part).to_numpy(np.float32) for part in ("hour", "day_of_week", "month")
        ]
    for name, shares in fitted["shares"].items():
        columns.append(frame[name].fillna("missing").map(shares).fillna(0).to_numpy(np.float32))
    return np.stack(columns, axis=1)


def transform_by_hand(frame: pd.DataFrame, fitted: dict) -> np.ndarray:
    numeric = fitted["scaler"].transform(numeric_by_hand(frame, fitted)).astype(np.float32)
    onehot = fitted["encoder"].transform(frame[LOW_CARD].fillna("missing").astype(object))
    return np.concatenate([numeric, onehot], axis=1)


# --- measuring ------------------------------------------------------------------------------------------
def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    return 0


def measure(work, frame: pd.DataFrame, opts: dict) -> tuple[float, int, tuple]:
    """Seconds and peak extra resident memory of work([frame], opts).

    The table is handed over (as in a real run, where the rows read from the file are released once
    cleaned), and the results are kept until after the peak is read.
    """
    holder = [frame]
    del frame
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(
        0
    )  # hand freed heap back, so one run's garbage is not the next's headroom
    pyarrow.default_memory_pool().release_unused()
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current resident size
    before = _status("VmRSS")
    start = time.perf_counter()
    out = work(holder, opts)
    seconds = time.perf_counter() - start
    return seconds, _status("VmHWM") - before, (sum(len(o) for o in out), out[0].shape[1])


def bench_cleaning(rows: int, rounds: int) -> None:
    start = time.perf_counter()
    raw = int(make_table(rows).memory_usage(deep=True).sum())
    print(
        f"table: {rows:,} rows x 30 columns + label, {raw / 2**20:.0f} MiB in memory "
        f"(made in {time.perf_counter() - start:.0f}s)"
    )
    opts = resolve(CLEAN_OPTIONS)
    for work in (run_pandas, run_dlkit):  # warm up: imports and first-call costs stay out of the figures
        work([make_table(2000)], opts)
    results: dict[str, list] = {"pandas/sklearn": [], "dlkit": []}
    for r in range(rounds):
        for name, work in (("pandas/sklearn", run_pandas), ("dlkit", run_dlkit)):
            seconds, peak, shape = measure(work, make_table(rows), opts)
            results[name].append((seconds, peak))
            print(
                f"  round {r + 1} {name:<15} {seconds:6.2f}s  peak +{peak / 2**20:6.0f} MiB  output {shape}"
            )
    base_t = statistics.median(s for s, _ in results["pandas/sklearn"])
    for name, runs in results.items():
        t, peak = statistics.median(s for s, _ in runs), max(p for _, p in runs)
        print(
            f"{name:<15} median {t:6.2f}s ({t / base_t:.2f}x pandas)  peak +{peak / 2**20:.0f} MiB "
            f"({peak / raw:.2f}x the raw table)"
        )


def bench_predict(rows: int) -> None:
    import torch
    from dlkit_recipes.tabular_fraud import TabularFraud

    from dlkit import jobs
    from dlkit.run import Run

    spec = importlib.util.spec_from_file_location("make_tf", ROOT / "sample_data" / "make_tabular_fraud.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = generator.generate(tmp / "data", seed=5, rows=1000, new_rows=rows)["new_transactions"]
        console.set_quiet(True)
        jobs.train("tabular-fraud", out=tmp / "run", overrides=["train.epochs=1"])
        start = time.perf_counter()
        count = jobs.predict(tmp / "run", [str(source)], tmp / "scored.csv")["count"]
        seconds = time.perf_counter() - start
        print(
            f"predict: {count:,} rows CSV -> CSV in {seconds:.2f}s = {count / seconds:,.0f} rows/s "
            "end to end (streamed in chunks)"
        )
        run = Run.open(tmp / "run")
        recipe = TabularFraud(jobs.build_config(TabularFraud, None, [], base=run.config()))
        state = run.state()
        model = recipe.build_model(state)
        run.load_best(model)
        frame = pd.read_csv(source)
        start = time.perf_counter()
        features = CleaningPipeline.from_state(state["pipeline"]).transform(frame)
        with torch.inference_mode():
            model.eval()(torch.from_numpy(features.numeric), torch.from_numpy(features.categorical))
        seconds = time.perf_counter() - start
        print(
            f"predict: {len(frame):,} rows in memory (features + model) in {seconds:.2f}s = "
            f"{len(frame) / seconds:,.0f} rows/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--predict-rows", type=int, default=200_000)
    args = parser.parse_args()
    bench_cleaning(args.rows, args.rounds)
    bench_predict(args.predict_rows)


if __name__ == "__main__":
    main()
