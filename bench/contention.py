"""Steps/s of a small model alone and beside a busy process: dlkit's defaults against torch's.

Each measurement is a fresh process (OpenMP reads its settings once, at start-up):
  raw    a hand-written loop with torch's defaults (one spinning intra-op thread per core it sees);
  dlkit  dlkit's `fit` with dlkit's defaults, as the CLI starts a job: OpenMP waits passively
         (threads.quiet_waiting) and `threads=auto` sizes the pool (threads.apply_threads);
  tuned  the raw loop with dlkit's thread settings: what the settings alone are worth.
"Busy" runs start a CPU-burning process first (a pure-Python spin loop per --busy, one core each).
Rounds alternate raw/dlkit and alone/busy so drifting machine load hits every cell alike; medians.

    python bench/contention.py [--quick] [--model mlp|cnn] [--rounds 3] [--busy 1]

Target: dlkit busy/alone slowdown <= 1.5x. On a machine shared with other work "alone" is not alone:
compare the ratios measured in the same run, not absolute steps/s across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
KINDS = ("raw", "dlkit", "tuned")
LABELS = ("raw loop, torch dflt", "dlkit, its defaults", "raw, dlkit threads")
TORCH_ENV = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "GOMP_SPINCOUNT")


def worker(kind: str, model: str, epochs: int, threads: str) -> None:
    """One measurement in this fresh process; prints {"steps_per_s", "threads"} as JSON."""
    sys.path.insert(0, str(HERE))
    if kind in ("dlkit", "tuned"):
        from dlkit.engine.threads import quiet_waiting

        quiet_waiting()
    import torch
    import workloads

    from dlkit import console

    console.set_quiet(True)
    if kind in ("dlkit", "tuned"):
        from dlkit.engine.threads import apply_threads

        apply_threads(threads)
    work = workloads.WORKLOADS[model]
    train, val = work.data(0)
    loop = workloads.dlkit_loop if kind == "dlkit" else workloads.raw_loop
    rate = loop(work, train, val, epochs)
    print(json.dumps({"steps_per_s": rate, "threads": torch.get_num_threads()}))


def burner() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def measure(kind: str, model: str, epochs: int, busy: int, threads: str) -> tuple[float, int]:
    env = {k: v for k, v in os.environ.items() if k not in TORCH_ENV}  # torch's defaults, truly
    burners = [burner() for _ in range(busy)]
    try:
        time.sleep(0.2 if busy else 0)
        cmd = [sys.executable, __file__, "--worker", kind, "--model", model, "--epochs", str(epochs)]
        out = subprocess.run([*cmd, "--threads", threads], env=env, capture_output=True, text=True)
    finally:
        for b in burners:
            b.kill()
            b.wait()
    if out.returncode:
        raise SystemExit(f"{kind} worker failed:\n{out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["steps_per_s"], result["threads"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--busy", type=int, default=1, help="CPU-burning processes beside the busy runs")
    parser.add_argument("--threads", default="auto", help="dlkit's threads setting (default auto)")
    parser.add_argument("--quick", action="store_true", help="1 round of 1 epoch")
    parser.add_argument("--worker", choices=KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.model, args.epochs, args.threads)
        return
    if args.quick:
        args.rounds, args.epochs = 1, 1
    cells: dict[tuple[str, bool], list[float]] = {}
    threads: dict[str, int] = {}
    for r in range(args.rounds):
        order = [(kind, busy) for busy in (False, True) for kind in KINDS]
        for kind, busy in order if r % 2 == 0 else order[::-1]:
            rate, threads[kind] = measure(
                kind, args.model, args.epochs, args.busy if busy else 0, args.threads
            )
            cells.setdefault((kind, busy), []).append(rate)
            where = "busy " if busy else "alone"
            print(f"round {r + 1}: {kind:5} {where} {rate:8.1f} steps/s", file=sys.stderr)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{args.model}, {cores} cores available, {args.busy} busy process(es), median of {args.rounds}")
    print(f"{'':22}{'alone':>10}{'busy':>10}{'slowdown':>10}")
    for kind, label in zip(KINDS, LABELS, strict=True):
        alone, busy = statistics.median(cells[kind, False]), statistics.median(cells[kind, True])
        print(f"{label:20} {alone:9.1f} {busy:9.1f} {alone / busy:9.2f}x  ({threads[kind]} threads)")
    slow = statistics.median(cells["dlkit", False]) / statistics.median(cells["dlkit", True])
    busy_gain = statistics.median(cells["dlkit", True]) / statistics.median(cells["raw", True])
    print(f"dlkit/raw when busy: {busy_gain:.2f}x; dlkit slowdown {slow:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
