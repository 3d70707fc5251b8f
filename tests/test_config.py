"""Config precedence and the errors a user sees for a wrong key, type or value."""

from __future__ import annotations

import pytest
import yaml
from dlkit_recipes.vision_classification import VisionClassification

from dlkit.config import Option, merge_schema, opt, parse_overrides, render_yaml, resolve
from dlkit.defaults import SHARED
from dlkit.errors import UserError
from dlkit.jobs import build_config


def test_precedence_shared_recipe_file_override(tmp_path):
    shared_lr = SHARED["train"]["lr"].default
    cfg = build_config(VisionClassification, None, [])
    assert cfg["train"]["lr"] == 5e-3 != shared_lr  # recipe beats shared
    assert cfg["train"]["optimizer"] == "adamw"  # shared default kept
    file = tmp_path / "c.yaml"
    file.write_text(yaml.safe_dump({"train": {"lr": 0.01, "epochs": 7}}))
    cfg = build_config(VisionClassification, file, [])
    assert cfg["train"]["lr"] == 0.01 and cfg["train"]["epochs"] == 7  # file beats recipe
    cfg = build_config(VisionClassification, file, ["train.epochs=3", "train.lr=1e-4", "model.name=resnet18"])
    assert cfg["train"]["epochs"] == 3 and cfg["train"]["lr"] == 1e-4  # command line beats file
    assert cfg["model"]["name"] == "resnet18"


def test_overrides_are_typed():
    cfg = build_config(
        VisionClassification, None, ["train.grad_clip=null", "data.cache=false", "train.lr=3", "seed=7"]
    )
    assert cfg["train"]["grad_clip"] is None and cfg["data"]["cache"] is False
    assert cfg["train"]["lr"] == 3.0 and isinstance(cfg["train"]["lr"], float) and cfg["seed"] == 7


@pytest.mark.parametrize(
    "override, says",
    [
        ("train.epoch=3", ["unknown config key 'train.epoch'", "did you mean 'train.epochs'"]),
        ("modle.name=x", ["unknown config key 'modle.name'", "did you mean 'model.name'"]),
        ("train.epochs=three", ["'train.epochs' expects int", "'three'"]),
        ("train.epochs=2.5", ["'train.epochs' expects int"]),
        ("train.optimizer=adam", ["'train.optimizer' must be one of: adamw, sgd", "did you mean 'adamw'"]),
        ("train=3", ["'train' is a section"]),
        ("train.epochs", ["is not key=value"]),
        ("train.epochs=null", ["'train.epochs' cannot be null"]),
    ],
)
def test_bad_overrides_name_the_key(override, says):
    with pytest.raises(UserError) as err:
        build_config(VisionClassification, None, [override])
    for text in says:
        assert text in str(err.value)


def test_bad_config_file(tmp_path):
    file = tmp_path / "bad.yaml"
    file.write_text("train:\n  epochs: [1\n")
    with pytest.raises(UserError, match="not valid YAML at line"):
        build_config(VisionClassification, file, [])
    file.write_text(yaml.safe_dump({"train": {"lr": "fast"}}))
    with pytest.raises(UserError, match="'train.lr' expects float"):
        build_config(VisionClassification, file, [])
    with pytest.raises(UserError, match="does not exist"):
        build_config(VisionClassification, tmp_path / "missing.yaml", [])


def test_cli_reports_config_errors_with_exit_2(cli):
    res = cli("train", "vision-classification", "train.epoch=3")
    assert res.code == 2
    assert "unknown config key 'train.epoch'" in res.err and "train.epochs" in res.err
    assert "Traceback" not in res.err


def test_recipe_keys_and_rendering():
    schema = merge_schema({"a": opt(1, "an int")}, {"a": 2, "b": {"c": opt(None, "maybe text", type=str)}})
    assert isinstance(schema["a"], Option) and schema["a"].default == 2
    assert resolve(schema, None, parse_overrides(["b.c=hello"])) == {"a": 2, "b": {"c": "hello"}}
    text = render_yaml(schema)
    assert "a: 2" in text and "# (int) an int" in text and "(str or null) maybe text" in text
    with pytest.raises(TypeError):
        merge_schema({}, {"new_key": 3})  # recipes declare new keys with opt(...)
