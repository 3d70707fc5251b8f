"""nlp-translation's report sections: sentence-level chrF over the test split, with the best and worst
translations beside their sources and references."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlkit.report import plots
from dlkit.report.page import Figure, Section, Table

SHOWN = 6  # best and worst examples each


def sections(recipe, data, tested, evaluation: dict, folder: Path) -> list:
    from sacrebleu.metrics import CHRF

    chrf = CHRF()
    rows = []
    for out in tested:
        for source, hyp, ref in zip(out["batch"]["source"], out["preds"], out["target"], strict=True):
            rows.append((chrf.sentence_score(hyp, [ref]).score, source, ref, hyp))
    if not rows:
        return []
    scores = np.array([r[0] for r in rows])
    fig, ax = plots.figure(7, 3.8)
    ax.hist(scores, bins=np.linspace(0, 100, 26), label="test sentences")
    ax.axvline(scores.mean(), color=plots.PALETTE[1], linestyle="--", label=f"mean {scores.mean():.1f}")
    ax.set(title="Sentence-level chrF (test)", xlabel="chrF (0-100, higher is better)", ylabel="sentences")
    ax.legend()
    ranked = sorted(rows, key=lambda r: r[0])
    columns = ["chrF", "source", "reference", "model"]

    def table(chosen, caption):
        return Table(columns, [[round(s, 1), src, ref, hyp] for s, src, ref, hyp in chosen], caption=caption)

    return [
        Section(
            "Translations: best and worst",
            text=[
                f"{len(rows)} test sentences; chrF per sentence (sacrebleu, character 6-grams). The corpus "
                "chrF in the metrics table is computed over all sentences at once."
            ],
            figures=[Figure(plots.save(fig, folder, "chrf"), "distribution of sentence chrF")],
            tables=[
                table(ranked[::-1][:SHOWN], f"the {SHOWN} best translations"),
                table(ranked[:SHOWN], f"the {SHOWN} worst translations"),
            ],
        )
    ]
