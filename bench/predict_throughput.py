"""`dlkit predict` against the bare model forward: items/s per recipe on the CPU, and their ratio.

For each recipe a tiny run is trained on its sample data in a temporary folder. Then, in this process
and alternating rounds so drift in machine load hits both alike:
- predict: `dlkit.jobs.predict`, the function the CLI calls, from the run directory and raw input files
  to a JSONL file (and the recipe's side files): opening the run, reading and collating inputs, the
  model, records. Only process start is left out.
- forward: the same model (the graph `dlkit export` would trace, from the recipe's export adapter) on
  the same inputs already read, collated and held in memory, at the same batch size.
The median items/s of each and `ratio` = predict / forward are reported (1.0: predict costs nothing
beyond the model), with the milliseconds of one predict call and one forward pass over all the inputs.
Inputs are the recipe's sample data (finance: its series repeated under new names, trained on and
forecast, so there are more than a handful of forecasts; its plots are off).

    OMP_NUM_THREADS=1 python bench/predict_throughput.py [--quick] [--threads 1] [--rounds 5] [--json F]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from dlkit import console
from dlkit.engine.loaders import make_loader
from dlkit.jobs import predict, train
from dlkit.jobs.common import load_best, open_run
from dlkit.samples import resolve_input

TRAIN = ["train.max_steps=30", "report.enabled=false", "train.val_every=1"]
# recipe -> (extra training overrides, predict inputs, --quick inputs, predict overrides)
RECIPES = {
    "tabular-fraud": (
        [],
        ["sample_data/tabular_fraud/transactions.csv"],
        ["sample_data/tabular_fraud/new_transactions.csv"],
        [],
    ),
    "vision-classification": (
        [],
        ["sample_data/vision_classification"],
        ["sample_data/vision_classification/test"],
        [],
    ),
    "nlp-sentiment": ([], ["sample_data/nlp_sentiment/reviews.csv"], None, []),
    "finance-forecasting": ([], ["prices:200"], ["prices:40"], ["predict.plot=false"]),
    "medical-imaging": (
        [],
        ["sample_data/medical_imaging/images"],
        ["sample_data/medical_imaging/images:16"],
        [],
    ),
    "vision-detection": (
        ["train.max_steps=10"],
        ["sample_data/vision_detection/images"],
        ["sample_data/vision_detection/images:48"],
        [],
    ),
}


def many_series(folder: Path, count: int) -> str:
    """About `count` series to forecast: the finance sample's, repeated under new tickers."""
    src = Path(resolve_input("sample_data/finance_forecasting/prices.csv"))
    with src.open() as fh:
        rows = list(csv.DictReader(fh))
    out = folder / f"prices_{count}.csv"
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for k in range(max(1, count // len({r["ticker"] for r in rows}))):
            writer.writerows({**r, "ticker": f"{r['ticker']}{k}"} for r in rows)
    return str(out)


def inputs_for(spec: list[str], folder: Path) -> list[str]:
    """Input paths from a spec: a path, `FOLDER:N` (its first N files) or `prices:N` (N series)."""
    paths = []
    for item in spec:
        where, _, count = item.partition(":")
        if where == "prices":
            paths.append(many_series(folder, int(count)))
        elif count:
            paths += [str(p) for p in sorted(Path(resolve_input(where)).iterdir()) if p.is_file()][
                : int(count)
            ]
        else:
            paths.append(item)
    return paths


def model_calls(adapter, batch: dict, size: int) -> list[tuple]:
    """The tensors the model is called with for one collated predict batch."""
    if "geometry" in batch:  # medical segmentation: each scan's grids, `size` at a time, as predict_step
        grids = torch.cat(list(batch["image"]))
        return [(grids[k : k + size],) for k in range(0, len(grids), size)]
    return [adapter.feed(batch)]


def bare_forward(run_path: Path, inputs: list[str], overrides: list[str]):
    """The export graph of the run's model and every predict input, collated once at the predict batch
    size: a function timing one pass over them, and the number of items."""
    run, recipe = open_run(run_path, overrides)
    state = run.state()
    recipe.setup(state, fresh=False)
    dataset = recipe.read_inputs([resolve_input(i) for i in inputs], state)
    loader = make_loader(dataset, recipe.cfg, shuffle=False, collate=recipe.collate)
    adapter = recipe.export_adapter(state)
    model, _ = load_best(run, recipe, state)
    graph = adapter.graph(model.cpu().eval()).eval()
    size = recipe.cfg["data"]["batch_size"]
    collated = list(loader)
    items = sum(len(b["id"]) for b in collated)
    batches = [tensors for b in collated for tensors in model_calls(adapter, b, size)]

    def one_pass() -> float:
        with torch.inference_mode():
            start = time.perf_counter()
            for b in batches:
                graph(*b)
            return items / (time.perf_counter() - start)

    return one_pass, items, size


def bench_recipe(name: str, root: Path, quick: bool, threads: int, rounds: int) -> dict:
    extra, full, small, predict_overrides = RECIPES[name]
    run_path = root / name
    inputs = inputs_for((small or full) if quick else full, root)
    data = inputs[0] if name == "finance-forecasting" else None  # the forecast series are known ones
    train(name, data, None, run_path, [*TRAIN, *extra, f"threads={threads}"])
    overrides = ["device=cpu", f"threads={threads}", *predict_overrides]
    forward, items, batch = bare_forward(run_path, inputs, overrides)

    def predicted() -> float:
        start = time.perf_counter()
        out = predict(run_path, inputs, root / f"{name}.jsonl", overrides)
        return out["count"] / (time.perf_counter() - start)

    predicted(), forward()  # warm-up: first imports, allocator, caches
    speeds: dict[str, list[float]] = {"predict": [], "forward": []}
    for _ in range(rounds):
        speeds["predict"].append(predicted())
        torch.set_num_threads(threads)  # what predict set for itself, for the forward too
        speeds["forward"].append(forward())
    median = {k: statistics.median(v) for k, v in speeds.items()}
    return {
        "recipe": name,
        "items": items,
        "batch": batch,
        "items_per_s": median,
        "ratio": median["predict"] / median["forward"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer inputs and rounds (a few minutes)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for both sides")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 5, quick 3)")
    parser.add_argument("--recipes", nargs="*", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--json", type=Path, default=None, help="write the results here (else to stdout)")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 5)
    torch.set_num_threads(args.threads)
    console.set_quiet(True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [bench_recipe(n, Path(tmp), args.quick, args.threads, rounds) for n in args.recipes]
    table = sys.stderr if args.json is None else sys.stdout
    print(f"CPU, {args.threads} thread(s), median of {rounds} alternating rounds (items/s)", file=table)
    head = f"{'recipe':24} {'items':>6} {'batch':>5} {'predict':>9} {'forward':>9} {'ratio':>6}"
    print(head + f" {'predict ms':>10} {'forward ms':>10}", file=table)
    for r in rows:
        s, n = r["items_per_s"], r["items"]
        print(
            f"{r['recipe']:24} {n:>6} {r['batch']:>5} {s['predict']:>9.0f} {s['forward']:>9.0f} "
            f"{r['ratio']:>6.2f} {1000 * n / s['predict']:>10.1f} {1000 * n / s['forward']:>10.1f}",
            file=table,
        )
    result = {"threads": args.threads, "rounds": rounds, "quick": args.quick, "recipes": rows}
    if args.json is None:
        print(json.dumps(result, indent=2))
    else:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
