"""The search space of `dlkit tune`: a YAML file over config keys, checked against the recipe's schema
before any trial runs, then turned into Optuna suggestions or a grid.

    train.lr:         {float: {low: 1.0e-4, high: 1.0e-2, log: true}}
    model.depth:      {int: {low: 1, high: 4}}            # step: 1 by default
    model.activation: {choices: [relu, gelu]}             # or the shorthand: [relu, gelu]

Keys may also be nested by section (`train: {lr: {float: ...}}`). Only scalar keys can be searched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dlkit.config import Option, flat_keys, load_yaml, resolve, unknown_key
from dlkit.errors import UserError

KINDS = ("choices", "int", "float")
SCALARS = (bool, int, float, str, type(None))
STRATEGIES = ("grid", "random", "tpe")


@dataclass(frozen=True)
class Dimension:
    key: str
    kind: str  # choices | int | float
    choices: tuple = ()
    low: float = 0
    high: float = 0
    step: float | None = None
    log: bool = False

    @property
    def discrete(self) -> bool:
        return self.kind != "float" or self.step is not None

    def values(self) -> list:
        """Every value of a discrete dimension, in order (the grid's axis)."""
        if self.kind == "choices":
            return list(self.choices)
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        return [round(self.low + i * self.step, 12) for i in range(count)]

    def suggest(self, trial) -> Any:
        if self.kind == "choices":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(
                self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def describe(self) -> str:
        if self.kind == "choices":
            return f"one of {list(self.choices)}"
        scale = ", log scale" if self.log else ""
        step = f" step {self.step:g}" if self.step is not None else ""
        return f"{self.kind} {self.low:g}..{self.high:g}{step}{scale}"


def grid(dims: list[Dimension]) -> dict[str, list]:
    return {d.key: d.values() for d in dims}


def grid_size(dims: list[Dimension]) -> int:
    return math.prod(len(v) for v in grid(dims).values())


def load_space(path: Path, schema: dict, strategy: str) -> list[Dimension]:
    """The dimensions of a space file, each checked against the recipe's schema (exit 2 on any mistake)."""
    raw = load_yaml(
        path,
        "space file",
        "write one config key per line, e.g. train.lr: {float: {low: 1.0e-4, high: 1.0e-2, log: true}}",
    )
    return parse_space(raw, schema, strategy, where=f"space file '{path}'")


def parse_space(raw: dict, schema: dict, strategy: str, where: str = "the space") -> list[Dimension]:
    if strategy not in STRATEGIES:
        raise UserError(f"unknown strategy '{strategy}'", f"use one of: {', '.join(STRATEGIES)}")
    specs = _flatten(raw)
    if not specs:
        raise UserError(
            f"{where} has no keys to search", "run `dlkit tune RECIPE --example-space` for a start"
        )
    options = flat_keys(schema)
    dims = []
    for key, spec in specs.items():
        try:
            dims.append(_dimension(key, spec, options, schema))
        except UserError as exc:
            raise UserError(f"{where}: {exc.message}", exc.hint) from None
    if strategy == "grid":
        continuous = [d.key for d in dims if not d.discrete]
        if continuous:
            raise UserError(
                f"{where}: grid search needs discrete values, but {', '.join(continuous)} "
                f"{'is a continuous range' if len(continuous) == 1 else 'are continuous ranges'}",
                "give it `choices: [...]` or a `step`, or search it with --strategy random or tpe",
            )
    return dims


def _flatten(raw: dict, prefix: str = "") -> dict[str, Any]:
    """Dotted keys -> specs; a mapping with none of the kinds (choices/int/float) is a section."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and not set(value) & set(KINDS):
            out.update(_flatten(value, f"{path}."))
        else:
            out[path] = value
    return out


def _check_value(key: str, value: Any, schema: dict) -> Any:
    """`value` as the config would take it for `key` (the config's own type and choice checks)."""
    nested: dict = {}
    node = nested
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    cfg = resolve(schema, None, nested)
    for part in parts:
        cfg = cfg[part]
    return cfg


def _dimension(key: str, spec: Any, options: dict[str, Option], schema: dict) -> Dimension:
    if key not in options:
        if any(k.startswith(f"{key}.") for k in options):
            raise UserError(
                f"'{key}' is a section, not a key", f"search its keys, e.g. {key}.KEY: {{choices: [...]}}"
            )
        raise unknown_key(key, schema)
    option = options[key]
    kind_name = option.kind.__name__
    if option.kind in (list, dict):
        raise UserError(f"'{key}' holds a {kind_name}; only keys with single values can be searched")
    if isinstance(spec, list):
        spec = {"choices": spec}
    if not isinstance(spec, dict) or len(set(spec) & set(KINDS)) != 1:
        raise UserError(
            f"'{key}' needs exactly one of choices, int or float",
            f"e.g. {key}: {{choices: [{_example(option)}]}}",
        )
    (kind,) = set(spec) & set(KINDS)
    extra = set(spec) - {kind}
    if extra:
        raise UserError(f"'{key}' has unknown field(s) {', '.join(sorted(extra))} beside {kind}")
    if kind == "choices":
        return _choices(key, spec[kind], schema)
    if option.kind not in (int, float) or (kind == "float" and option.kind is int):
        use = "int: {low: ..., high: ...} or choices" if option.kind is int else "choices: [...]"
        raise UserError(f"'{key}' takes {option.describe()} values, not a {kind} range", f"give it {use}")
    return _range(key, kind, spec[kind], schema)


def _example(option: Option) -> str:
    return ", ".join(str(c) for c in (option.choices or (option.default,))[:3])


def _choices(key: str, values: Any, schema: dict) -> Dimension:
    if not isinstance(values, list) or not values:
        raise UserError(
            f"'{key}' has no choices", f"list at least one value, e.g. {key}: {{choices: [a, b]}}"
        )
    checked = []
    for value in values:
        if not isinstance(value, SCALARS):
            raise UserError(
                f"'{key}' choice {value!r} is not a single value (a number, text, true/false or null)"
            )
        checked.append(_check_value(key, value, schema))
    repeated = [v for v in checked if checked.count(v) > 1]
    if repeated:
        raise UserError(f"'{key}' lists {repeated[0]!r} more than once", "list each choice once")
    return Dimension(key, "choices", choices=tuple(checked))


def _range(key: str, kind: str, spec: Any, schema: dict) -> Dimension:
    example = f"{key}: {{{kind}: {{low: 1, high: 4}}}}"
    if not isinstance(spec, dict) or not {"low", "high"} <= set(spec):
        raise UserError(f"'{key}' {kind} range needs low and high", f"e.g. {example}")
    extra = set(spec) - {"low", "high", "step", "log"}
    if extra:
        raise UserError(
            f"'{key}' {kind} range has unknown field(s) {', '.join(sorted(extra))}",
            "use low, high, step, log",
        )
    number = int if kind == "int" else (int, float)
    for field in ("low", "high", "step"):
        value = spec.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, number)):
            raise UserError(
                f"'{key}' {field} must be {'an integer' if kind == 'int' else 'a number'}, got {value!r}"
            )
    low, high, step, log = spec["low"], spec["high"], spec.get("step"), spec.get("log", False)
    if not isinstance(log, bool):
        raise UserError(f"'{key}' log must be true or false, got {log!r}")
    if low > high:
        raise UserError(f"'{key}' has low {low} above high {high}", "swap them")
    if log and low <= 0:
        raise UserError(
            f"'{key}' is on a log scale but low is {low}", "log ranges need low > 0 (e.g. 1.0e-5)"
        )
    if step is not None and step <= 0:
        raise UserError(f"'{key}' step must be above 0, got {step}")
    if log and step not in (None, 1 if kind == "int" else None):
        raise UserError(f"'{key}' cannot have both log: true and a step", "drop one of them")
    for value in (low, high):
        _check_value(key, value, schema)
    if kind == "float":
        return Dimension(
            key,
            "float",
            low=float(low),
            high=float(high),
            step=None if step is None else float(step),
            log=log,
        )
    return Dimension(key, "int", low=low, high=high, step=step or 1, log=log)


def space_spec(dims: list[Dimension]) -> dict:
    """The space as plain data (stored with the study, so a resume can tell the same space)."""
    return {d.key: [d.kind, list(d.choices), d.low, d.high, d.step, d.log] for d in dims}


def example_space(cls, schema: dict) -> str:
    """A commented starting space for `cls` (its `tune_space()`), checked like a user's file."""
    spec = cls.tune_space()
    dims = parse_space(spec, schema, "tpe", where=f"{cls.name}'s tune_space()")
    options = flat_keys(schema)
    lines = [
        f"# Search space for {cls.name}: dlkit tune {cls.name} --space space.yaml --strategy tpe --trials 20",
        "# One config key per entry (`dlkit info " + cls.name + "` lists them all), with one of:",
        "#   choices: [a, b, c]                              these values (grid search takes only these",
        "#   int: {low: 1, high: 4, step: 1}                  and ranges with a step)",
        "#   float: {low: 1.0e-4, high: 1.0e-2, log: true}   log: true samples evenly on a log scale",
        "",
    ]
    for dim in dims:
        option = options[dim.key]
        lines.append(f"# {option.help} (default {_inline(option.default)})")
        given = spec[dim.key]
        lines.append(f"{dim.key}: {_inline(given if isinstance(given, dict) else {'choices': given})}")
    return "\n".join(lines) + "\n"


def _inline(value: Any) -> str:
    return (
        yaml.safe_dump(value, default_flow_style=True, width=1000, sort_keys=False)
        .strip()
        .removesuffix("...")
        .strip()
    )
