"""`dlkit check`: the recipe's pre-flight findings as a table and a dict; fatal ones are counted."""

from __future__ import annotations

from pathlib import Path

from dlkit import console
from dlkit.jobs.common import build_config, resolve_data_path
from dlkit.registry import get_recipe


def check(
    recipe_name: str,
    data: str | None = None,
    config_file: Path | None = None,
    overrides: list[str] | None = None,
) -> dict:
    cls = get_recipe(recipe_name)
    cfg = build_config(cls, config_file, list(overrides or []) + ([f"data.path={data}"] if data else []))
    cfg = cls.resolve_config(cfg)
    path = resolve_data_path(cfg["data"]["path"], cls)
    findings = _weights_findings(cfg) + cls(cfg).check(path)
    _print_findings(path, findings)
    return {
        "recipe": recipe_name,
        "data": str(path),
        "fatal": sum(f.severity == "fatal" for f in findings),
        "findings": [vars(f) for f in findings],
    }


def _weights_findings(cfg: dict) -> list:
    """model.pretrained is opened and checked here, as train does before making a run folder."""
    from dlkit.errors import UserError
    from dlkit.modeling import read_weights
    from dlkit.recipe import Finding

    path = cfg["model"].get("pretrained")
    if not path:
        return []
    try:
        tensors = len(read_weights(path))
    except UserError as exc:
        return [Finding("pretrained weights", "fatal", exc.message, exc.hint or "")]
    return [Finding("pretrained weights", "ok", f"'{path}': {tensors} tensors")]


def _print_findings(path: Path, findings: list) -> None:
    from rich.table import Table

    if console.is_quiet():
        return
    colour = {"ok": "green", "info": "cyan", "warning": "yellow", "fatal": "bold red"}
    table = Table("check", "result", "found", "what to do", title=f"dlkit check: {path}")
    for f in findings:
        table.add_row(f.check, f"[{colour.get(f.severity, 'white')}]{f.severity}[/]", f.message, f.fix)
    console.err.print(table)
