"""`dlkit report`: HTML pages people look at instead of reading metrics.jsonl and eval.json.

- one run: RUN/report/index.html (shared sections plus the recipe's own, see `Recipe.report_sections`);
- several runs: a comparison page (curves overlaid, metrics side by side, config differences);
- a tuning study folder: STUDY/report/index.html (trials, metric by trial, importances, trial pages).

Pages are static HTML with relative PNGs beside them: nothing to fetch, they open offline.
"""

from __future__ import annotations

from pathlib import Path

from dlkit.errors import UserError
from dlkit.report.page import Figure, Link, Section, Table

__all__ = ["Figure", "Link", "Section", "Table", "report"]


def report(paths: list[Path], out: Path | None = None, overrides: list[str] | None = None) -> dict:
    """Write the page for one run, one study, or a comparison of runs; {"report": path, "kind": ...}."""
    from dlkit.report import compare, run_page, study

    if not paths:
        raise UserError("no run directory given", "dlkit report RUN [RUN ...]")
    missing = [str(p) for p in paths if not Path(p).is_dir()]
    if missing:
        raise UserError(f"no such folder: {', '.join(missing)}", "give run directories made by `dlkit train`")
    if overrides and len(paths) != 1:
        raise UserError("overrides apply to one run's page only", "run dlkit report RUN key=value per run")
    if len(paths) == 1 and study.is_study(Path(paths[0])):
        if out is not None:
            raise UserError("--out is for comparisons", "a study's page is always written to STUDY/report/")
        return {"report": str(study.build(Path(paths[0]))), "kind": "study"}
    if len(paths) == 1:
        if out is not None:
            raise UserError("--out is for comparisons", "a run's page is always written to RUN/report/")
        return {"report": str(run_page.build(Path(paths[0]), overrides=overrides or [])), "kind": "run"}
    folder = out if out is not None else compare.default_folder([Path(p) for p in paths])
    return {"report": str(compare.build([Path(p) for p in paths], folder)), "kind": "comparison"}
