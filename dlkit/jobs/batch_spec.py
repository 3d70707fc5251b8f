"""Reading a `dlkit batch` file into a checked list of jobs, before any job runs.

Everything a user can get wrong in the file (an unknown command or key, a matrix that expands to
nothing, a reference to a job that does not exist or comes later, a config key the recipe does not
have) is refused here with the job and the key named, so a long batch never dies halfway on a typo.

The file:

    defaults:                      # merged into every job that takes the key; a job's own keys win
      overrides: {device: cpu}
      train: {overrides: {train.epochs: 1}}    # defaults for one command only
    jobs:
      - name: fraud
        command: train
        recipe: tabular-fraud
        matrix: {seed: [0, 1], train.lr: [0.01, 0.001]}   # job keys or config keys -> 4 jobs
      - command: evaluate
        run: ${jobs.fraud[seed=0,train.lr=0.01].run}

Paths are relative to the folder of the file (jobs run there). A new command is one entry in COMMANDS.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dlkit.config import load_yaml
from dlkit.errors import UserError


@dataclass(frozen=True)
class Command:
    """The keys one job command takes: `required` ones, then optional ones."""

    required: tuple[str, ...]
    optional: tuple[str, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return self.required + self.optional


COMMANDS = {
    "train": Command(("recipe",), ("data", "config", "out", "seed")),
    "evaluate": Command(("run",), ("data",)),
    "predict": Command(("run", "inputs"), ("output",)),
}
PLANNED = ("tune", "export", "report", "chat")  # dlkit commands that batch files cannot run yet
COMMON = ("name", "command", "overrides", "matrix")
PATH_KEYS = ("data", "config", "out", "run", "output")  # turned into paths relative to the file
REFERENCE = re.compile(r"\$\{jobs\.(?P<name>.+?)\.(?P<field>[a-z_]+)\}")
FIELDS = {"run": ("train", "evaluate", "predict"), "output": ("predict",)}


@dataclass
class Job:
    """One expanded job: its command line for `python -m dlkit`, what it waits for, and its hash."""

    name: str
    slug: str  # the name made safe for file names (logs, results, run folders)
    command: str
    keys: dict[str, Any]
    argv: list[str] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)
    hash: str = ""
    recipe: str | None = None  # the recipe of the job's run
    config: dict | None = None  # a train job's resolved config: hashed, so a changed default reruns it

    @property
    def run(self) -> str | None:
        return self.keys.get("out") if self.command == "train" else self.keys.get("run")

    @property
    def output(self) -> str | None:
        return self.keys.get("output")


def load_jobs(path: Path, out_dir: Path) -> list[Job]:
    """The file's jobs, expanded, references resolved, every key and config override checked."""
    doc = _read(path)
    where = f"'{path}'"
    unknown = set(doc) - {"defaults", "jobs"}
    if unknown:
        raise UserError(f"{where}: unknown top-level key '{sorted(unknown)[0]}'", "use 'defaults' and 'jobs'")
    entries = doc.get("jobs")
    if not isinstance(entries, list) or not entries:
        raise UserError(f"{where}: 'jobs' must be a non-empty list of jobs")
    defaults = _check_defaults(doc.get("defaults") or {}, where)
    jobs: list[Job] = []
    for index, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise UserError(f"{where}: job {index} must be a mapping of keys, not {type(entry).__name__}")
        name = str(entry.get("name") or f"{entry.get('command', 'job')}-{index}")
        jobs += _expand(name, _with_defaults(entry, defaults, name, where), where)
    _check_unique(jobs, where)
    base = path.resolve().parent
    for job in jobs:
        _place(job, base, out_dir)
    by_name: dict[str, Job] = {}
    for job in jobs:
        _resolve_references(job, by_name, jobs, where)
        _check(job, base, where)
        job.argv = _argv(job)
        job.hash = _hash(job, by_name)
        by_name[job.name] = job
    return jobs


def _read(path: Path) -> dict:
    return load_yaml(
        path, "batch file", "a batch file is a mapping with a 'jobs' list; see README: Batch jobs"
    )


def _command_of(value: Any, where: str) -> Command:
    if value in COMMANDS:
        return COMMANDS[value]
    if value in PLANNED:
        raise UserError(
            f"{where}: command '{value}' cannot run as a batch job yet",
            f"batch jobs can run: {', '.join(COMMANDS)}; run `dlkit {value}` on its own",
        )
    close = difflib.get_close_matches(str(value), list(COMMANDS), n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"commands: {', '.join(COMMANDS)}"
    raise UserError(f"{where}: unknown command '{value}'", hint)


def _unknown_key(key: str, allowed: list[str], where: str) -> UserError:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"keys here: {', '.join(allowed)}"
    return UserError(f"{where}: unknown key '{key}'", hint)


def _check_defaults(defaults: Any, where: str) -> dict:
    if not isinstance(defaults, dict):
        raise UserError(f"{where}: 'defaults' must be a mapping")
    shared = sorted({k for c in COMMANDS.values() for k in c.keys} | {"overrides"})
    for key, value in defaults.items():
        if key in COMMANDS:
            if not isinstance(value, dict):
                raise UserError(f"{where}: defaults.{key} must be a mapping of {key} keys")
            for sub in value:
                if sub not in (*COMMANDS[key].keys, "overrides"):
                    raise _unknown_key(sub, [*COMMANDS[key].keys, "overrides"], f"{where}: defaults.{key}")
        elif key not in shared:
            raise _unknown_key(key, shared + list(COMMANDS), f"{where}: defaults")
    return defaults


def _overrides(value: Any, where: str) -> dict[str, str]:
    """`{key: value}` (nested or dotted) or `["key=value", ...]` -> {dotted key: command-line value}."""
    if value is None:
        return {}
    if isinstance(value, list):
        items = {}
        for item in value:
            if not isinstance(item, str) or "=" not in item:
                raise UserError(f"{where}, key 'overrides': '{item}' is not key=value", "e.g. train.epochs=3")
            key, raw = item.split("=", 1)
            items[key.strip()] = raw
        return items
    if isinstance(value, dict):
        flat: dict[str, str] = {}
        for key, val in value.items():
            if isinstance(val, dict):
                flat.update({f"{key}.{k}": v for k, v in _overrides(val, where).items()})
            else:
                flat[str(key)] = _cli_value(val)
        return flat
    raise UserError(f"{where}, key 'overrides': expected a mapping or a list of key=value")


def _cli_value(value: Any) -> str:
    """A YAML value as `key=value` text that dlkit's override parser reads back to the same value."""
    if isinstance(value, str) and value.startswith("$"):
        return value  # a reference, resolved later
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


def _with_defaults(entry: dict, defaults: dict, name: str, where: str) -> dict:
    """defaults < defaults.<command> < the job's own keys; overrides merged key by key."""
    at = f"{where}: job '{name}'"
    if "command" not in entry:
        raise UserError(f"{at}: key 'command' is missing", f"one of: {', '.join(COMMANDS)}")
    command = entry["command"]
    spec = _command_of(command, f"{at}, key 'command'")
    allowed = [*COMMON, *spec.keys]
    for key in entry:
        if key not in allowed:
            raise _unknown_key(str(key), allowed, at)
    shared = {k: v for k, v in defaults.items() if k in spec.keys}
    merged = {**shared, **(defaults.get(command) or {}), **entry}
    merged["overrides"] = {
        **_overrides(defaults.get("overrides"), f"{where}: defaults"),
        **_overrides((defaults.get(command) or {}).get("overrides"), f"{where}: defaults.{command}"),
        **_overrides(entry.get("overrides"), at),
    }
    missing = [k for k in spec.required if merged.get(k) in (None, "", [])]
    if missing:
        raise UserError(
            f"{at}: key '{missing[0]}' is missing", f"a {command} job needs: {', '.join(spec.required)}"
        )
    return merged


def _expand(name: str, keys: dict, where: str) -> list[Job]:
    """A job with a matrix -> one job per combination, named NAME[key=value,...]."""
    matrix = keys.pop("matrix", None)
    command = keys.pop("command")
    keys.pop("name", None)
    if matrix is None:
        return [Job(name, _slug(name), command, keys)]
    at = f"{where}: job '{name}', key 'matrix'"
    if not isinstance(matrix, dict) or not matrix:
        raise UserError(f"{at}: the matrix expands to no jobs", "give it keys with lists of values")
    for axis, values in matrix.items():
        if "." not in str(axis) and axis not in COMMANDS[command].keys:
            raise _unknown_key(str(axis), [*COMMANDS[command].keys, "CONFIG.KEY"], at)
        if not isinstance(values, list) or not values:
            raise UserError(
                f"{at}.{axis}: no values, so the matrix expands to no jobs", "give a list of values"
            )
    jobs = []
    for combo in itertools.product(*matrix.values()):
        chosen = dict(zip(matrix, combo, strict=True))
        label = ",".join(f"{k}={v}" for k, v in chosen.items())
        job_keys = {**keys, "overrides": dict(keys["overrides"])}
        for axis, value in chosen.items():
            if "." in str(axis):
                job_keys["overrides"][str(axis)] = _cli_value(value)
            else:
                job_keys[axis] = value
        full = f"{name}[{label}]"
        jobs.append(Job(full, _slug(f"{name}-" + "-".join(str(v) for v in combo)), command, job_keys))
    return jobs


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "job"


def _check_unique(jobs: list[Job], where: str) -> None:
    seen: dict[str, str] = {}
    for job in jobs:
        if job.name in seen:
            raise UserError(f"{where}: two jobs are named '{job.name}'", "give each job its own 'name'")
        slug, n = job.slug, 2
        while slug in seen.values():  # names that differ only in characters a file name cannot hold
            slug, n = f"{job.slug}-{n}", n + 1
        job.slug = slug
        seen[job.name] = slug


def _place(job: Job, base: Path, out_dir: Path) -> None:
    """Where a job's files go: its own run folder (train) and predictions file under the batch folder."""
    if job.command == "train" and not job.keys.get("out"):
        job.keys["out"] = str(out_dir / "runs" / job.slug)
    if job.command == "predict" and not job.keys.get("output"):
        job.keys["output"] = str(out_dir / "predictions" / f"{job.slug}.jsonl")
    for key in ("out", "output"):
        if job.keys.get(key) and "${" not in str(job.keys[key]):
            job.keys[key] = str((base / Path(str(job.keys[key])).expanduser()).resolve())


def _resolve_references(job: Job, done: dict[str, Job], jobs: list[Job], where: str) -> None:
    """`${jobs.NAME.run}` -> that earlier job's run folder; the job then waits for it."""

    def substitute(value: Any, key: str) -> Any:
        if isinstance(value, list):
            return [substitute(v, key) for v in value]
        if not isinstance(value, str) or "${" not in value:
            return value
        at = f"{where}: job '{job.name}', key '{key}'"

        def one(match: re.Match) -> str:
            name, fld = match["name"], match["field"]
            target = done.get(name)
            if target is None:
                later = any(j.name == name for j in jobs)
                family = [j.name for j in jobs if j.name.startswith(f"{name}[")]
                if later:
                    raise UserError(
                        f"{at}: refers to job '{name}', which comes later", "move it before this job"
                    )
                if family:
                    raise UserError(
                        f"{at}: job '{name}' is a matrix of {len(family)} jobs; name one",
                        f"e.g. ${{jobs.{family[0]}.{fld}}}",
                    )
                names = [j.name for j in done.values()]
                close = difflib.get_close_matches(name, names, n=1)
                hint = (
                    f"did you mean '{close[0]}'?" if close else f"earlier jobs: {', '.join(names) or 'none'}"
                )
                raise UserError(f"{at}: refers to job '{name}', which does not exist", hint)
            if fld not in FIELDS or target.command not in FIELDS[fld]:
                usable = [f for f, cmds in FIELDS.items() if target.command in cmds]
                raise UserError(
                    f"{at}: '{match[0]}' has no field '{fld}'",
                    f"a {target.command} job gives: {', '.join(usable)}",
                )
            if name not in job.needs:
                job.needs.append(name)
            if fld == "run" and job.recipe is None:
                job.recipe = target.recipe
            return str(getattr(target, fld))

        resolved = REFERENCE.sub(one, value)
        if "${" in resolved:
            raise UserError(f"{at}: cannot read the reference in '{value}'", "write it as ${jobs.NAME.run}")
        return resolved

    for key, value in list(job.keys.items()):
        if key == "overrides":
            job.keys[key] = {k: substitute(v, f"overrides.{k}") for k, v in value.items()}
        else:
            job.keys[key] = substitute(value, key)


def _check(job: Job, base: Path, where: str) -> None:
    """Files that must exist now, and config overrides against the recipe's keys.

    A path made by an earlier job of the batch (a reference) is not there yet: it is not checked.
    """
    from dlkit.config import flat_keys
    from dlkit.jobs.common import INFERENCE_KEYS, build_config, is_key_in, schema_for
    from dlkit.registry import get_recipe
    from dlkit.run import Run

    at = f"{where}: job '{job.name}'"
    keys = job.keys
    given = "config" if job.command == "train" else "run"
    if keys.get(given) and not job.needs and not (base / str(keys[given])).exists():
        hint = "to use a run this batch trains, write ${jobs.NAME.run}" if given == "run" else None
        raise UserError(f"{at}, key '{given}': '{keys[given]}' does not exist", hint)
    overrides = [f"{k}={v}" for k, v in keys["overrides"].items()]
    try:
        if job.command == "train":
            job.recipe = str(keys["recipe"])
            config = base / str(keys["config"]) if keys.get("config") and not job.needs else None
            job.config = build_config(get_recipe(job.recipe), config, overrides)
            return
        if not job.needs:
            job.recipe = Run.open(base / str(keys["run"])).recipe
        cls = get_recipe(job.recipe)
    except UserError as exc:
        raise UserError(f"{at}: {exc.message}", exc.hint) from None
    known = sorted(flat_keys(schema_for(cls)))
    allowed = INFERENCE_KEYS + tuple(cls.inference_keys)
    for key in keys["overrides"]:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            raise UserError(
                f"{at}, key 'overrides': unknown config key '{key}'",
                f"did you mean '{close[0]}'?"
                if close
                else f"run `dlkit info {job.recipe}` to list every key",
            )
        if not is_key_in(key, allowed):
            raise UserError(
                f"{at}, key 'overrides': '{key}' cannot be changed after training",
                "set it on the train job instead",
            )


def _argv(job: Job) -> list[str]:
    """The job's `dlkit` command line (without the program name)."""
    k = job.keys
    overrides = [f"{key}={value}" for key, value in k["overrides"].items()]
    if job.command == "train":
        argv = ["train", str(k["recipe"]), "--out", str(k["out"])]
        for opt in ("data", "config", "seed"):
            if k.get(opt) is not None:
                argv += [f"--{opt}", str(k[opt])]
        return [*argv, *overrides, "--json"]
    if job.command == "evaluate":
        data = ["--data", str(k["data"])] if k.get("data") is not None else []
        return ["evaluate", str(k["run"]), *data, *overrides, "--json"]
    inputs = k["inputs"] if isinstance(k["inputs"], list) else [k["inputs"]]
    return ["predict", str(k["run"]), *map(str, inputs), "--output", str(k["output"]), *overrides, "--json"]


def _hash(job: Job, done: dict[str, Job]) -> str:
    """Same command line, same resolved config, same upstream jobs -> same hash: the job can be skipped."""
    payload = {
        "argv": job.argv,
        "config": job.config,
        "needs": [done[n].hash for n in job.needs],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]
