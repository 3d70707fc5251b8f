"""What every job shares: building the config, finding the data, loading a recipe's best model."""

from __future__ import annotations

from pathlib import Path

from dlkit import console
from dlkit.config import flat_keys, load_yaml, merge_schema, parse_overrides, resolve, unknown_key
from dlkit.defaults import SHARED
from dlkit.errors import UserError
from dlkit.recipe import Recipe
from dlkit.run import Run

# Keys `evaluate` and `predict` may change: they do not touch the fitted model. A recipe adds its own
# through `Recipe.inference_keys`. Entries ending in "." are prefixes.
INFERENCE_KEYS = (
    "device",
    "data.batch_size",
    "data.num_workers",
    "threads",
    "train.amp",
    "predict.",
    "generate.",
    "report.",
)


def schema_for(cls: type[Recipe]) -> dict:
    return merge_schema(SHARED, cls.config())


def build_config(
    cls: type[Recipe], config_file: Path | None, overrides: list[str], base: dict | None = None
) -> dict:
    """shared defaults < recipe defaults < (run config when resuming) < --config file < key=value."""
    schema = schema_for(cls)
    merged: dict = {}
    for layer in (base or {}, load_yaml(config_file) if config_file else {}):
        deep_update(merged, layer)
    return resolve(schema, merged, parse_overrides(overrides))


def deep_update(into: dict, new: dict) -> None:
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            deep_update(into[k], v)
        else:
            into[k] = v


def is_key_in(key: str, allowed: tuple[str, ...]) -> bool:
    """`key` is one of `allowed`, or under one of its sections (entries ending in a dot)."""
    return any(key == a or (a.endswith(".") and key.startswith(a)) for a in allowed)


def run_config(cls: type[Recipe], run: Run, overrides: list[str]) -> dict:
    """A run's config with inference-safe overrides; a key that would change the fitted model is refused."""
    allowed = INFERENCE_KEYS + tuple(cls.inference_keys)
    listed = ", ".join(a + ("*" if a.endswith(".") else "") for a in allowed)
    known = flat_keys(schema_for(cls))
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if "=" in item and key not in known and not any(k.startswith(f"{key}.") for k in known):
            raise unknown_key(key, schema_for(cls))  # a typo gets the closest key, not a refusal
        if "=" in item and not is_key_in(key, allowed):
            raise UserError(
                f"config key '{key}' cannot be changed after training: the model in '{run.path}' was "
                "fitted with it",
                f"keys you can change here: {listed}; to change {key}, train a new run",
            )
    return build_config(cls, None, overrides, base=run.config())  # unknown keys and bad values


def resolve_data_path(value: str | None, cls: type[Recipe]) -> Path:
    """A path as given, else the checkout's or the installed wheel's copy of the bundled sample data."""
    from dlkit.samples import locate

    raw = value or cls.sample_data
    path = Path(raw).expanduser()
    if not path.exists():
        path = locate(raw) or path
    if not path.exists():
        raise UserError(
            f"data path '{raw}' does not exist", "pass --data PATH to a folder or file of your data"
        )
    return path


def prepare_model(recipe: Recipe, state: dict, fresh: bool):
    """Build the recipe's model; on a fresh training run apply init and local pretrained weights."""
    from dlkit.modeling import init_weights, load_pretrained

    model = recipe.build_model(state)
    cfg = recipe.cfg["model"]
    if fresh:
        init_weights(model, cfg["init"], cfg["activation"])
        if cfg["pretrained"]:
            skipped = load_pretrained(model, cfg["pretrained"])
            console.info(
                f"loaded weights from {cfg['pretrained']}"
                + (f" ({len(skipped)} tensors left at init: {', '.join(skipped[:4])}...)" if skipped else "")
            )
    return model


def load_best(run: Run, recipe: Recipe, state: dict):
    """The run's best weights in the recipe's model, on the configured device."""
    from dlkit.engine.device import channels_last, pick_device

    device = pick_device(recipe.cfg["device"])
    model = prepare_model(recipe, state, fresh=False)
    run.load_best(model)
    if channels_last(recipe.cfg["train"]["channels_last"], model, device):
        import torch

        model = model.to(memory_format=torch.channels_last)
    return model.to(device), device


def open_run(run_path: Path, overrides: list[str]) -> tuple[Run, Recipe]:
    """A run and its recipe, set up for inference (evaluate, predict), torch's threads sized for it."""
    from dlkit.engine.threads import apply_threads
    from dlkit.registry import get_recipe

    run = Run.open(run_path)
    cls = get_recipe(run.recipe)
    recipe = cls(run_config(cls, run, overrides))
    apply_threads(recipe.cfg["threads"])
    return run, recipe
