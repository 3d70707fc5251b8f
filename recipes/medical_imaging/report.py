"""medical-imaging's report sections. Segmentation: scan, true mask and predicted mask overlays for a
few test scans, and Dice per class beside the baselines. Classification: the confusion matrix and the
surest mistakes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dlkit.report import plots
from dlkit.report.classify import confident_mistakes, confusion_section, mistakes_table
from dlkit.report.page import Figure, Section

SHOWN = 4  # test scans drawn


def sections(recipe, data, tested, evaluation: dict, folder: Path) -> list:
    classes = data.state["classes"]
    if not recipe.segmentation:
        if recipe.positive is not None:  # two labels: the positive label's probability
            tested = ({**o, "preds": torch.stack([1 - o["preds"], o["preds"]], -1)} for o in tested)
            classes = [c for i, c in enumerate(classes) if i != recipe.positive] + [classes[recipe.positive]]
        cm, mistakes = confident_mistakes(tested, classes, lambda batch, i: batch["id"][i])
        return [confusion_section(cm, classes, folder), mistakes_table(mistakes, "scans")]
    shown, spare = [], []  # scans whose true mask has foreground first; others only to fill up
    for out in tested:
        for i in range(len(out["target"])):
            one = _slice(out["batch"]["image"][i], out["target"][i], out["preds"][i], out["batch"]["id"][i])
            (shown if (one[1] > 0).any() else spare).append(one)
        if len(shown) >= SHOWN:
            break
    shown = (shown + spare)[:SHOWN]
    found = []
    if shown:
        fig, axes = plots.figure(10, 3.3 * len(shown) + 0.3, len(shown), 3, squeeze=False)
        for row, (scan, truth, pred, name) in zip(axes, shown, strict=True):
            for ax, mask, title in zip(
                row, (None, truth, pred), ("scan", "true mask", "predicted mask"), strict=True
            ):
                ax.imshow(scan, cmap="gray")
                if mask is not None:
                    ax.imshow(
                        np.ma.masked_equal(mask, 0),
                        cmap="tab10",
                        alpha=0.5,
                        vmin=0,
                        vmax=9,
                        interpolation="nearest",
                    )
                ax.set_title(f"{title}: {plots.short(Path(str(name)).name, 24)}", fontsize=8)
                ax.axis("off")
        fig.suptitle("Test scans: true and predicted masks over the scan")
        found.append(
            Section(
                "Mask overlays",
                text=[
                    f"classes coloured: {', '.join(classes[1:])} (background clear); scans with "
                    "foreground first; for volumes, the slice with the most foreground."
                ],
                figures=[Figure(plots.save(fig, folder, "overlays"), "scan; ground truth; the model's mask")],
            )
        )
    dice = (evaluation.get("details") or {}).get("dice_per_class") or {}
    if dice:
        names = list(dice)
        labels = list(next(iter(dice.values())))
        fig, ax = plots.figure(max(6.4, 1.4 * len(labels) * len(names) / 2), 4.0)
        width, x = 0.8 / len(names), np.arange(len(labels))
        for j, name in enumerate(names):
            ax.bar(
                x + (j - (len(names) - 1) / 2) * width,
                [dice[name].get(c, 0) for c in labels],
                width,
                label=name,
            )
        ax.set_xticks(x, [plots.short(c) for c in labels])
        ax.set(
            title="Dice per class (test)", xlabel="class", ylabel="Dice (0-1, higher is better)", ylim=(0, 1)
        )
        ax.legend()
        found.append(
            Section(
                "Dice per class",
                figures=[Figure(plots.save(fig, folder, "dice"), "the model beside its baselines")],
            )
        )
    return found


def _slice(image, truth, pred, name):
    """(scan H x W, true mask, predicted mask, id): a 3D volume's slice with the most true foreground."""
    scan, truth, pred = image.float()[0].numpy(), truth.numpy(), pred.numpy()
    if scan.ndim == 3:
        k = int(np.argmax((truth > 0).reshape(truth.shape[0], -1).sum(1)))
        scan, truth, pred = scan[k], truth[k], pred[k]
    return scan, truth, pred, name
