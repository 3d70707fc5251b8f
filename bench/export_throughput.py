"""ONNX Runtime (fp32 and int8 dynamic quantisation) against PyTorch: predict throughput on the CPU.

For each run (or, with none given, one tiny run per ONNX-exportable recipe trained on its sample data in a
temporary folder) the model is exported with `--dynamic-batch`, fp32 and int8, and the same batches of
the run's test split (the `data.batch_size` it was trained with) go through the PyTorch model, the fp32
graph and the int8 graph. Only the model call is timed: reading inputs and turning outputs into records is
the same code for every backend. Rounds alternate the three so drift in machine load hits them alike;
the median examples/s is reported with the ratios to PyTorch, and the int8 graph's agreement.
It leaves the int8 export (checked with no tolerance) in each RUN/exported/onnx/.

    OMP_NUM_THREADS=1 python bench/export_throughput.py [RUN ...] [--threads 1] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from dlkit import console
from dlkit.export.job import export, parity_batches
from dlkit.export.parity import compare, torch_forward
from dlkit.export.runtime import onnx_forward, onnx_session
from dlkit.jobs.common import load_best, open_run

RECIPES = {
    "vision-classification": ["train.epochs=1"],
    "vision-detection": ["train.epochs=1"],
    "nlp-sentiment": ["train.epochs=1"],
    "tabular-fraud": ["train.epochs=1"],
    "finance-forecasting": ["train.epochs=2"],
    "medical-imaging": ["train.epochs=1"],
}


def train_tiny(root: Path) -> list[Path]:
    from dlkit.jobs import train

    runs = []
    for name, overrides in RECIPES.items():
        out = root / name
        train(name, None, None, out, overrides)
        runs.append(out)
    return runs


def throughput(forward, batches: list[tuple], rounds: int) -> list[float]:
    """examples/s of `forward` over all `batches`, once per round (after one warm-up pass)."""
    n = sum(len(b[0]) for b in batches)
    for b in batches:
        forward(*b)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for b in batches:
            forward(*b)
        times.append(n / (time.perf_counter() - start))
    return times


def bench_run(run_path: Path, threads: int, rounds: int) -> dict:
    export(run_path, "onnx", dynamic_batch=True, quantize="int8", min_agreement=0.0, tolerance=1e9)
    folder = run_path / "exported" / "onnx"
    run, recipe = open_run(run_path, ["device=cpu"])
    state = run.state()
    recipe.setup(state, fresh=False)
    adapter = recipe.export_adapter(state)
    model, _ = load_best(run, recipe, state)
    graph = adapter.graph(model.cpu().eval()).eval()
    loader = parity_batches(recipe, state, None)
    batches = [adapter.feed(b) for b in loader][:20]
    backends = {
        "torch": torch_forward(graph),
        "onnx_fp32": onnx_forward(onnx_session(folder / "model.onnx", threads), adapter.inputs),
        "onnx_int8": onnx_forward(onnx_session(folder / "model.int8.onnx", threads), adapter.inputs),
    }
    speeds: dict[str, list[float]] = {k: [] for k in backends}
    with torch.inference_mode():
        for _ in range(rounds):
            for name, forward in backends.items():
                speeds[name] += throughput(forward, batches, 1)
    median = {k: statistics.median(v) for k, v in speeds.items()}
    int8 = compare(adapter, backends["torch"], backends["onnx_int8"], iter(loader), 256)
    return {
        "recipe": recipe.name,
        "examples_per_s": median,
        "fp32_ratio": median["onnx_fp32"] / median["torch"],
        "int8_ratio": median["onnx_int8"] / median["torch"],
        "int8_agreement": int8["agreement"],
        "int8_max_rel_diff": int8["max_rel_diff"],
        "batch": len(batches[0][0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="*", type=Path, help="run directories (default: train tiny ones)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for both backends")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    console.set_quiet(True)
    with tempfile.TemporaryDirectory() as tmp:
        runs = args.runs or train_tiny(Path(tmp))
        rows = [bench_run(r, args.threads, args.rounds) for r in runs]
    print(f"CPU, {args.threads} thread(s), median of {args.rounds} rounds, model call only (examples/s)")
    head = f"{'recipe':24} {'batch':>5} {'torch':>10} {'onnx fp32':>10} {'onnx int8':>10} {'fp32 x':>7} "
    print(head + f"{'int8 x':>7} {'int8 agree':>10}")
    for r in rows:
        s = r["examples_per_s"]
        print(
            f"{r['recipe']:24} {r['batch']:>5} {s['torch']:>10.0f} {s['onnx_fp32']:>10.0f} "
            f"{s['onnx_int8']:>10.0f} {r['fp32_ratio']:>7.2f} {r['int8_ratio']:>7.2f} "
            f"{r['int8_agreement']:>10.3f}"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
