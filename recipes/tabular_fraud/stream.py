"""Tables larger than memory, part two: the splits as datasets read lazily, chunk by chunk, and
`load_streamed`, the streaming counterpart of the recipe's in-memory `load_data`.

Training rows are shuffled within a buffer of `SHUFFLE_ROWS` rows (half of each shuffled buffer is
carried into the next, so rows drift across buffers too), drawn from the generator the engine reseeds
every epoch: the same seed gives the same batches, and a resume replays them. Memory holds one chunk,
the buffer, the sample the cleaning and the baselines were fitted on, the val rows' ids and the val and
test labels (9 and 1 bytes a row), never the table. (The evaluation metrics keep every val/test score,
12 bytes a row per scorer: with tens of millions of rows, lower data.val_fraction / data.test_fraction.)
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from dlkit_recipes.tabular_fraud.data import TableSet, encode_labels
from dlkit_recipes.tabular_fraud.stream_scan import (
    TEST,
    TRAIN,
    VAL,
    StreamPlan,
    classes_of,
    make_plan,
    scan,
    should_stream,
)
from torch.utils.data import IterableDataset, get_worker_info

from dlkit.data.cleaning import CleaningPipeline, print_report
from dlkit.data.features import Report
from dlkit.data.splits import SPLITS
from dlkit.errors import UserError
from dlkit.recipe import RecipeData

SHUFFLE_ROWS = 100_000


class SplitStream(IterableDataset):
    """One split's rows as {'numeric', 'categorical', 'label', 'id'}, read and cleaned chunk by chunk.

    `labels` (val and test, 1 byte a row) and `row_numbers` (val) come from the scan, so calibration and
    eval details need no extra pass. With several loader workers only the first reads (rows stay in
    order once)."""

    def __init__(self, plan: StreamPlan, part: int, pipeline: dict, classes: list[str], rows: int):
        self.plan, self.part, self.pipeline, self.classes, self.rows = plan, part, pipeline, classes, rows
        self.generator: torch.Generator | None = None
        self.labels = self.row_numbers = None

    def __len__(self) -> int:
        return self.rows

    def shuffle_with(self, generator: torch.Generator) -> None:
        """Shuffle (within a buffer) from `generator`, which the engine reseeds each epoch."""
        self.generator = generator

    def blocks(self) -> Iterator[tuple[np.ndarray, ...]]:
        """(numeric, categorical, labels, ids) for this split's rows of each chunk, in file order."""
        pipeline, offset = CleaningPipeline.from_state(self.pipeline), 0
        for split, source, chunk in self.plan.chunks():
            mine = self.plan.assign(split, source, chunk) == self.part
            ids = offset + np.arange(len(chunk), dtype=np.int64)
            offset += len(chunk)
            if mine.any():
                rows, where = chunk[mine], f"'{source}'"
                features = pipeline.transform(rows, where)
                labels = encode_labels(rows[self.plan.label], self.classes, where)
                yield features.numeric, features.categorical, labels, ids[mine]

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        if info is not None and info.id > 0:
            return
        blocks = self.blocks()
        if self.generator is not None:
            seed = int(torch.randint(2**62, (1,), generator=self.generator))
            blocks = shuffled(blocks, np.random.default_rng(seed))
        for numeric, categorical, labels, ids in blocks:
            for i in range(len(labels)):
                yield {"numeric": numeric[i], "categorical": categorical[i], "label": labels[i], "id": ids[i]}


def shuffled(blocks: Iterator[tuple[np.ndarray, ...]], rng: np.random.Generator) -> Iterator[tuple]:
    """The rows of `blocks` shuffled within a buffer: each full buffer is permuted, its first half
    yielded and its second half kept to mix with the next rows; the last buffer is yielded whole."""
    held: tuple | None = None
    for block in blocks:
        held = (
            block if held is None else tuple(np.concatenate(pair) for pair in zip(held, block, strict=True))
        )
        if len(held[2]) >= SHUFFLE_ROWS:
            order = rng.permutation(len(held[2]))
            cut = len(order) - SHUFFLE_ROWS // 2
            yield tuple(a[order[:cut]] for a in held)
            held = tuple(a[order[cut:]] for a in held)
    if held is not None:
        order = rng.permutation(len(held[2]))
        yield tuple(a[order] for a in held)


def collate_rows(items: list[dict]) -> dict:
    """Stack streamed training/evaluation rows into one batch."""
    return {
        "numeric": torch.from_numpy(np.stack([it["numeric"] for it in items])),
        "categorical": torch.from_numpy(np.stack([it["categorical"] for it in items])),
        "label": torch.as_tensor(np.array([it["label"] for it in items], dtype=np.int64)),
        "id": torch.as_tensor(np.array([it["id"] for it in items], dtype=np.int64)),
    }


def load_streamed(recipe, srcs: dict, state: dict | None, evaluate_all: bool, where: str) -> RecipeData:
    """Scan once (splits, counts, checks, the sample), fit the cleaning and the baselines on the sample
    when training from scratch, and return the splits as `SplitStream`s."""
    cfg, d = recipe.cfg, recipe.cfg["data"]
    if cfg["clean"]["drop_duplicates"]:
        raise UserError(
            f"clean.drop_duplicates needs the whole table in memory, and {where} is streamed",
            "drop the duplicates beforehand, or raise data.stream_above above the table's size in MB",
        )
    if state is None and cfg["imbalance"] == "sampling":
        raise UserError(
            f"imbalance=sampling draws rows at random from the whole table, and {where} is streamed",
            "use imbalance=weighted_loss or focal, or raise data.stream_above above the table's size in MB",
        )
    plan = make_plan(srcs, cfg, evaluate_all)
    if state is not None and not evaluate_all:  # the run's own splits, whatever the data holds now
        plan.carve = state["stream"]["carve"]
    declared = {c for c, kind in cfg["clean"]["types"].items() if kind != "numeric"}
    found = scan(plan, d["stream_sample"] if state is None else 0, declared)
    report = Report()
    if state is None:
        classes = classes_of(
            found.label_counts[TRAIN], d["positive"], d["label"], f"the training rows of {where}"
        )
        pipeline, state = _fit(recipe, found, classes, report, where)
        state["stream"] = {
            "sample_rows": int(len(found.samples[TRAIN])),
            "train_rows": found.rows(TRAIN),
            "carve": plan.carve,
        }
        print_report(report.entries, f"cleaning report: {where} (streamed)")
    else:
        classes, pipeline = state["classes"], CleaningPipeline.from_state(state["pipeline"])
    sets = {}
    for part in (TRAIN, VAL, TEST) if not evaluate_all else (TEST,):
        stream = SplitStream(plan, part, {"columns": pipeline.columns}, classes, found.rows(part))
        if part != TRAIN:
            _check_labels(found, part, classes, d["label"], where)
            stream.labels = torch.from_numpy(found.labels(part, classes))
        if part == VAL:  # calibration looks labels up by row id
            stream.row_numbers = torch.from_numpy(found.row_ids(part))
        sets[SPLITS[part]] = stream
    return RecipeData(sets.get("train"), sets.get("val"), sets.get("test"), state, [])


def _check_labels(found, part: int, classes: list[str], label: str, where: str) -> None:
    unknown = [v for v in found.label_counts[part] if v not in classes]
    if unknown:
        raise UserError(
            f"label column '{label}' in {where} has value '{unknown[0]}', but the model knows only "
            f"{classes[0]} and {classes[1]}",
            "map the labels to the training values",
        )


def _fit(recipe, found, classes: list[str], report: Report, where: str) -> tuple[CleaningPipeline, dict]:
    """The recipe's own state fitted on the sample (cleaning, baselines), then its counts, prevalence and
    pos_weight made exact from the scan."""
    cfg, d = recipe.cfg, recipe.cfg["data"]
    train_rows, sample = found.rows(TRAIN), found.samples[TRAIN]
    report.add("label", d["label"], None, f"fraud = '{classes[1]}', legit = '{classes[0]}' (data.positive)")
    report.add(
        "streamed: cleaning and baselines fitted on a seeded sample of the training rows",
        "all",
        len(sample),
        f"of {train_rows} (data.stream_sample)",
    )
    pipeline = CleaningPipeline.fit(sample, cfg["clean"], [d["label"], d["split_column"]], where, report)
    sets = {}
    for part in (TRAIN, VAL):
        rows = found.samples.get(part)
        if rows is None or not len(rows):
            raise UserError(
                f"{where} has no {SPLITS[part]} rows", "give more rows, or a split with rows in it"
            )
        labels = encode_labels(rows[d["label"]], classes, where)
        sets[SPLITS[part]] = TableSet(pipeline.transform(rows, where), labels, rows.index.to_numpy())
    state = recipe._fit_state(pipeline, classes, sets, report)
    fraud = {SPLITS[p]: found.label_counts[p][classes[1]] for p in (TRAIN, VAL, TEST)}
    configured = cfg["loss"]["pos_weight"]
    exact = math.sqrt((train_rows - fraud["train"]) / max(1, fraud["train"]))
    state.update(
        prevalence=fraud["train"] / train_rows,
        pos_weight=round(configured if configured is not None else exact, 4),
        counts={s: {"rows": found.rows(SPLITS.index(s)), "fraud": n} for s, n in fraud.items()},
    )
    return pipeline, state


def streams(srcs: dict, cfg: dict, state: dict | None) -> bool:
    """Whether this load streams: as the run did (its state says) or, for a new run, by size."""
    if state is not None:
        return "stream" in state
    return should_stream(srcs, cfg["data"]["stream_above"])
