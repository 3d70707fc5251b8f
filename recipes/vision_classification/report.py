"""vision-classification's report sections: the confusion matrix and the surest mistakes, with images."""

from __future__ import annotations

from pathlib import Path

from dlkit.report import plots
from dlkit.report.classify import confident_mistakes, confusion_section, mistakes_table
from dlkit.report.page import Figure


def thumbnail(path: str, side: int = 160):
    """The original image file, shrunk (the page shows what the user has, not the normalised tensor)."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
        img.thumbnail((side, side))
        return np.asarray(img)


def sections(recipe, data, tested, evaluation: dict, folder: Path) -> list:
    classes = data.state["classes"]
    cm, mistakes = confident_mistakes(tested, classes, lambda batch, i: batch["id"][i])
    section = mistakes_table(mistakes, "images")
    if mistakes:
        images, titles = [], []
        for conf, _, true, pred, path in mistakes:
            try:
                images.append(thumbnail(path))
            except OSError:
                continue
            titles.append(f"true {plots.short(true, 14)}\npred {plots.short(pred, 14)} ({conf:.0%})")
        if images:
            fig = plots.image_grid(images, titles, "Most confident mistakes (test split)")
            section.figures.append(
                Figure(plots.save(fig, folder, "mistakes"), "true and predicted class, confidence")
            )
    return [confusion_section(cm, classes, folder), section]
