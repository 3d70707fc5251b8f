"""Config that flows one way: shared defaults < recipe defaults < --config file < key=value overrides.

A schema is a nested dict whose leaves are `Option`s (default, type, help, choices). Recipes add
their own keys as `Option`s or change a shared default with a plain value. `resolve` returns a plain
nested dict of checked values; `render_yaml` writes the documented default config.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from dlkit.errors import UserError

_TYPES = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict"}


@dataclass(frozen=True)
class Option:
    default: Any
    help: str
    type: type | None = None
    choices: tuple | None = None
    nullable: bool = False
    auto: bool = False  # "auto" is accepted besides values of `type` (resolved later by the core)

    @property
    def kind(self) -> type:
        return self.type if self.type is not None else type(self.default)

    def describe(self) -> str:
        name = _TYPES.get(self.kind, self.kind.__name__)
        name = f"{name} or auto" if self.auto else name
        return f"{name} or null" if self.nullable else name


def opt(
    default: Any,
    help: str,
    choices: tuple | list | None = None,
    type: type | None = None,
    nullable: bool = False,
    auto: bool = False,
) -> Option:
    """One documented key. A null default (or nullable=True) lets users set it to null to turn it off;
    `auto=True` also accepts the string "auto" (a value the core works out, e.g. from the data size)."""
    if (default is None or auto) and type is None:
        raise TypeError(f"option '{help}' defaults to null or auto, so it needs an explicit type")
    return Option(default, help, type, tuple(choices) if choices else None, nullable or default is None, auto)


Schema = dict  # nested: str -> Option | Schema


def scratch_or_finetune_lr(scratch: str, scratch_lr: float, finetune_lr: float) -> dict:
    """The `train.lr` option of a recipe whose model is trained from scratch (`scratch`) or fine-tuned
    from a checkpoint: null = the rate for either, resolved by the recipe's `resolve_config`."""
    return opt(
        None,
        f"peak learning rate; null = {scratch_lr} for {scratch}, {finetune_lr} to fine-tune a checkpoint",
        type=float,
    )


def merge_schema(base: Schema, changes: dict, prefix: str = "") -> Schema:
    """Apply a recipe's defaults: an Option adds or replaces a key, a plain value changes a default."""
    out = copy.copy(base)
    for key, value in changes.items():
        path = f"{prefix}{key}"
        current = out.get(key)
        if isinstance(value, Option):
            out[key] = value
        elif isinstance(value, dict) and not isinstance(current, Option):
            out[key] = merge_schema(current or {}, value, f"{path}.")
        elif isinstance(current, Option):
            # keep the key's type: a recipe that turns a nullable key off must not make it "NoneType"
            out[key] = replace(current, default=_coerce(path, current, value), type=current.kind)
        else:
            raise TypeError(f"recipe default '{path}' is not a shared key; declare it with opt(...)")
    return out


def defaults(schema: Schema) -> dict:
    return {k: defaults(v) if isinstance(v, dict) else copy.deepcopy(v.default) for k, v in schema.items()}


def flat_keys(schema: Schema, prefix: str = "") -> dict[str, Option]:
    keys: dict[str, Option] = {}
    for k, v in schema.items():
        if isinstance(v, dict):
            keys.update(flat_keys(v, f"{prefix}{k}."))
        else:
            keys[f"{prefix}{k}"] = v
    return keys


def unknown_key(path: str, schema: Schema) -> UserError:
    known = list(flat_keys(schema))
    close = difflib.get_close_matches(path, known, n=1, cutoff=0.5)
    hint = f"did you mean '{close[0]}'?" if close else "run `dlkit info RECIPE` to list every key"
    return UserError(f"unknown config key '{path}'", hint)


def _coerce(path: str, option: Option, value: Any) -> Any:
    """Check one value against its option, converting strings from the command line."""
    if value is None:
        if option.nullable:
            return None
        raise UserError(f"config key '{path}' cannot be null; expected {option.describe()}")
    if option.auto and value == "auto":
        return value
    kind = option.kind
    bad = UserError(
        f"config key '{path}' expects {option.describe()}, got {value!r}",
        f"for example {path}={option.default!r}" if option.default is not None else None,
    )
    if kind is bool:
        if isinstance(value, bool):
            out = value
        elif isinstance(value, str) and value.lower() in (
            "true",
            "yes",
            "on",
            "1",
            "false",
            "no",
            "off",
            "0",
        ):
            out = value.lower() in ("true", "yes", "on", "1")
        else:
            raise bad
    elif kind is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        try:
            out = value if isinstance(value, int) else int(str(value))
        except ValueError:
            raise bad from None
    elif kind is float:
        if isinstance(value, bool):
            raise bad
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise bad from None
    elif kind is str:
        if isinstance(value, (list, dict)):
            raise bad
        out = str(value)
    elif kind is list:
        if isinstance(value, str):
            parsed = yaml.safe_load(value) if value.startswith("[") else [v for v in value.split(",") if v]
            value = parsed
        if not isinstance(value, list):
            raise bad
        out = value
    elif kind is dict:
        if not isinstance(value, dict):
            raise bad
        out = value
    else:
        out = value
    if option.choices is not None and out not in option.choices:
        close = difflib.get_close_matches(str(out), [str(c) for c in option.choices], n=1)
        hint = f"did you mean '{close[0]}'?" if close else None
        allowed = ", ".join(str(c) for c in option.choices)
        raise UserError(f"config key '{path}' must be one of: {allowed} (got {out!r})", hint)
    return out


def _apply(cfg: dict, schema: Schema, updates: dict, root: Schema, prefix: str = "") -> None:
    for key, value in updates.items():
        path = f"{prefix}{key}"
        if key not in schema:
            while isinstance(value, dict) and len(value) == 1:  # name the whole dotted key the user wrote
                key, value = next(iter(value.items()))
                path = f"{path}.{key}"
            raise unknown_key(path, root)
        node = schema[key]
        if isinstance(node, dict):
            if not isinstance(value, dict):
                raise UserError(f"config key '{path}' is a section; set its keys, e.g. {path}.KEY=VALUE")
            _apply(cfg[key], node, value, root, f"{path}.")
        else:
            cfg[key] = _coerce(path, node, value)


def parse_overrides(items: list[str]) -> dict:
    """Turn ``["train.epochs=3", "model.name=resnet18"]`` into a nested dict of YAML-parsed values."""
    nested: dict = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"override '{item}' is not key=value", "for example train.epochs=3")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise UserError(f"override '{item}' has no key", "for example train.epochs=3")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"override '{item}' conflicts with another override of '{part}'")
        node[parts[-1]] = value
    return nested


def load_yaml(path: str | Path, what: str = "config file", hint: str | None = None) -> dict:
    """A YAML mapping from `path` (safe_load: no Python objects); UserError naming the file and the line
    when it is missing, not UTF-8, not YAML or not a mapping. `what` names the file in messages."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} '{path}' does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{what} '{path}' is not UTF-8 text (byte {exc.start})", "save it as UTF-8 YAML"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(f"{what} '{path}' is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise UserError(
            f"{what} '{path}' must hold a mapping of keys to values, not {type(data).__name__}", hint
        )
    return data


def resolve(schema: Schema, file_cfg: dict | None = None, overrides: dict | None = None) -> dict:
    """Defaults, then the config file, then command-line overrides; every key and type checked."""
    cfg = defaults(schema)
    for layer in (file_cfg or {}, overrides or {}):
        _apply(cfg, schema, layer, schema)
    return cfg


def dump_yaml(cfg: dict) -> str:
    return yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False)


def _scalar(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def render_yaml(schema: Schema, indent: int = 0) -> str:
    """The default config as YAML with one documented key per line (type, meaning, choices)."""
    lines: list[str] = []
    pad = "  " * indent
    for key, node in schema.items():
        if isinstance(node, dict):
            lines.append(f"{pad}{key}:")
            lines.append(render_yaml(node, indent + 1))
            continue
        left = f"{pad}{key}: {_scalar(node.default)}"
        note = f"({node.describe()}) {node.help}"
        if node.choices:
            note += f" [{'|'.join(str(c) for c in node.choices)}]"
        lines.append(f"{left:<44}# {note}")
    return "\n".join(lines)
