"""nlp-sentiment's report sections: the confusion matrix and the surest mistakes with their texts."""

from __future__ import annotations

from pathlib import Path

from dlkit.report.classify import confident_mistakes, confusion_section, mistakes_table


def sections(recipe, data, tested, evaluation: dict, folder: Path) -> list:
    classes = data.state["classes"]
    cm, mistakes = confident_mistakes(tested, classes, lambda batch, i: batch["text"][i])
    return [confusion_section(cm, classes, folder), mistakes_table(mistakes, "texts")]
