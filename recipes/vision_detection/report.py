"""vision-detection's report sections: test images with true and predicted boxes, and AP per class for
the model beside its baselines."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlkit.report import plots
from dlkit.report.page import Figure, Section

SHOWN = 8  # test images drawn
MIN_SCORE = 0.3  # predicted boxes drawn at or above this score


def sections(recipe, data, tested, evaluation: dict, folder: Path) -> list:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    classes = data.state["classes"]
    shown = []
    for out in tested:
        for i, image in enumerate(out["batch"]["image"]):
            shown.append((plots.to_image(image), out["target"][i], out["preds"][i]))
            if len(shown) == SHOWN:
                break
        if len(shown) == SHOWN:
            break
    found = []
    if shown:
        cols = min(4, len(shown))
        fig, axes = plots.figure(
            3.3 * cols,
            3.5 * ((len(shown) + cols - 1) // cols) + 0.6,
            (len(shown) + cols - 1) // cols,
            cols,
            squeeze=False,
        )
        for ax in axes.flat:
            ax.axis("off")
        for ax, (image, truth, pred) in zip(axes.flat, shown, strict=False):
            ax.imshow(image)
            for box in truth["boxes"].tolist():
                x0, y0, x1, y1 = box
                ax.add_patch(
                    Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=plots.PALETTE[2], linewidth=2)
                )
            kept = [
                (b, lab, s)
                for b, lab, s in zip(
                    pred["boxes"].tolist(), pred["labels"].tolist(), pred["scores"].tolist(), strict=True
                )
                if s >= MIN_SCORE
            ]
            for (x0, y0, x1, y1), label, score in kept:
                ax.add_patch(
                    Rectangle(
                        (x0, y0),
                        x1 - x0,
                        y1 - y0,
                        fill=False,
                        edgecolor=plots.PALETTE[1],
                        linewidth=1.5,
                        linestyle="--",
                    )
                )
                ax.text(
                    x0,
                    y0,
                    f"{plots.short(classes[int(label)], 10)} {score:.2f}",
                    fontsize=6,
                    color="white",
                    backgroundcolor=plots.PALETTE[1],
                    va="bottom",
                )
            ax.set_title(f"{len(truth['boxes'])} true, {len(kept)} predicted", fontsize=8)
        handles = [
            Line2D([], [], color=plots.PALETTE[2], linewidth=2, label="true box"),
            Line2D([], [], color=plots.PALETTE[1], linestyle="--", label=f"predicted (score >= {MIN_SCORE})"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=2)
        fig.suptitle("Test images: true and predicted boxes")
        found.append(
            Section(
                "Detections on test images",
                figures=[
                    Figure(
                        plots.save(fig, folder, "detections"),
                        "solid: ground truth; dashed: the model's boxes with class and score",
                    )
                ],
            )
        )
    per_class = (evaluation.get("details") or {}).get("ap_per_class") or {}
    if per_class:
        names = list(per_class)
        fig, ax = plots.figure(max(6.4, 1.2 * len(classes)), 4.0)
        width = 0.8 / len(names)
        x = np.arange(len(classes))
        for j, name in enumerate(names):
            ax.bar(
                x + (j - (len(names) - 1) / 2) * width,
                [per_class[name].get(c, 0) for c in classes],
                width,
                label=name,
            )
        ax.set_xticks(x, [plots.short(c) for c in classes], rotation=30 if len(classes) > 6 else 0)
        ax.set(title="Average precision per class (test, IoU 0.5:0.95)", xlabel="class", ylabel="AP")
        ax.legend()
        found.append(
            Section(
                "AP per class",
                figures=[Figure(plots.save(fig, folder, "ap-per-class"), "the model beside its baselines")],
            )
        )
    return found
