"""Performance defaults: thread and worker sizing, and listing recipes without importing torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from importlib.metadata import EntryPoint

import pytest
import torch
import yaml

from dlkit.engine import threads
from dlkit.errors import UserError
from dlkit.recipe import Recipe
from dlkit.registry import ATTRIBUTES, get_recipe, recipe_meta, recipe_names

LISTING = """
import json, os, sys
from dlkit.cli import main
sys.argv = ["dlkit", "recipes", "--json"]
try:
    main()
except SystemExit:
    pass
seen = {"torch": "torch" in sys.modules, "omp": os.environ.get("OMP_WAIT_POLICY")}
print(json.dumps(seen), file=sys.stderr)
"""


def _listing(env: dict) -> tuple[list[dict], dict]:
    out = subprocess.run(
        [sys.executable, "-c", LISTING], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout), json.loads(out.stderr.strip().splitlines()[-1])


def test_listing_recipes_leaves_torch_unloaded():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    rows, seen = _listing(env)
    assert {r["name"] for r in rows} == set(recipe_names())
    assert all(set(r) == set(ATTRIBUTES) for r in rows)
    assert seen["torch"] is False
    _, seen = _listing({**env, "OMP_WAIT_POLICY": "ACTIVE"})  # the user's own setting stays
    assert seen["omp"] == "ACTIVE"


def test_threads_wait_passively_only_beside_other_work(monkeypatch):
    from dlkit.engine.threads import quiet_waiting

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert quiet_waiting(load=0.1) is None  # a quiet machine: OpenMP's own (spinning) default
    assert quiet_waiting(load=1.7) == "PASSIVE"  # another process at work: sleep while waiting
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert quiet_waiting(load=3.0) == "ACTIVE"  # the user's setting wins


@pytest.mark.parametrize("name", recipe_names())
def test_light_metadata_agrees_with_the_recipe_class(name):
    cls = get_recipe(name)
    assert recipe_meta(name) == {a: getattr(cls, a) for a in ATTRIBUTES}


def test_plugin_without_light_metadata_is_listed_from_its_class(monkeypatch):
    module = types.ModuleType("heavy_plugin")

    class Heavy(Recipe):
        name, task, description = "heavy", "regression", "a plug-in with no RECIPE_META"
        default_model, sample_data = "mlp", "data.csv"
        load_data = build_model = step = metrics = baselines = read_inputs = predict_step = to_records = None

    Heavy.__abstractmethods__ = frozenset()
    module.Heavy = Heavy
    monkeypatch.setitem(sys.modules, "heavy_plugin", module)
    point = EntryPoint("heavy", "heavy_plugin:Heavy", "dlkit.recipes")
    monkeypatch.setattr("dlkit.registry.entry_points", lambda group: [point])
    assert recipe_meta("heavy")["description"] == "a plug-in with no RECIPE_META"


def test_auto_threads_follow_the_cores_this_process_may_use(monkeypatch, tmp_path):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(6)), raising=False)
    monkeypatch.setattr(threads, "CPU_MAX", tmp_path / "absent")
    assert threads.resolve_threads("auto") == 6
    quota = tmp_path / "cpu.max"
    quota.write_text("400000 100000\n")  # a container allowed 4 cores of the 6
    monkeypatch.setattr(threads, "CPU_MAX", quota)
    assert threads.resolve_threads("auto") == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # two processes of a distributed run share them
    assert threads.resolve_threads("auto") == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.resolve_threads("auto") == 1
    assert threads.resolve_threads(12) == 12  # an explicit number is honoured
    with pytest.raises(UserError, match="threads=0"):
        threads.resolve_threads(0)


class OnDisk(torch.utils.data.Dataset):
    reads_from_disk = True

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n


def test_loader_workers_only_for_long_epochs_of_data_read_from_disk():
    in_memory = torch.utils.data.TensorDataset(torch.zeros(10_000, 3))
    assert threads.auto_workers(in_memory, 64, threads=16) == 0
    assert threads.auto_workers(OnDisk(10_000), 64, threads=16) == 4
    assert threads.auto_workers(OnDisk(10_000), 64, threads=6) == 3
    assert threads.auto_workers(OnDisk(10_000), 64, threads=2) == 0  # a worker would take a core
    assert threads.auto_workers(OnDisk(100), 64, threads=16) == 0  # too short to start them


def test_images_not_cached_in_memory_are_read_from_disk_by_workers():
    from dlkit_recipes.vision_classification.data import Images

    from dlkit.data.images import ImageSet

    paths = [f"{i}.png" for i in range(2000)]
    lazy = ImageSet(Images(paths, [0] * 2000, 32, 3))  # data.cache off, or too big for memory
    cached = ImageSet(Images(paths, [0] * 2000, 32, 3, [torch.zeros(3, 32, 32)] * 2000))
    assert lazy.reads_from_disk and threads.auto_workers(lazy, 32, threads=8) == 4
    assert not cached.reads_from_disk and threads.auto_workers(cached, 32, threads=8) == 0


@pytest.fixture
def torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_training_uses_the_threads_setting_and_records_the_workers(cli, tmp_path, torch_threads):
    run = tmp_path / "run"
    res = cli(
        "train", "finance-forecasting", "--out", run, "threads=1", "train.max_steps=2", "report.enabled=false"
    )
    assert res.code == 0, res.err
    assert json.loads((run / "manifest.json").read_text())["threads"] == 1
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["num_workers"] == 0


def _engine_state(*overrides: str):
    from dlkit.config import parse_overrides, resolve
    from dlkit.defaults import SHARED
    from dlkit.engine.loop import build_state

    cfg = resolve(SHARED, None, parse_overrides(["train.epochs=1", *overrides]))
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 2))
    return build_state(model, cfg, steps_per_epoch=4, mode="max")


@pytest.mark.gpu
def test_cuda_training_uses_fused_adamw_and_autotuned_convolutions():
    state = _engine_state("device=cuda")
    assert state.optimizer.defaults["fused"] is True
    assert torch.backends.cudnn.benchmark is True
    assert state.dtype in (torch.bfloat16, None)  # bf16 where the GPU runs it natively


def test_channels_last_auto_is_on_for_conv_nets_on_cuda_only():
    from dlkit.engine.device import channels_last

    conv, mlp = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)), torch.nn.Linear(3, 2)
    cuda, cpu = torch.device("cuda"), torch.device("cpu")  # devices only named: nothing runs on them
    assert channels_last("auto", conv, cuda) and not channels_last("auto", mlp, cuda)
    assert not channels_last("auto", conv, cpu)
    assert channels_last(True, conv, cpu) and not channels_last(False, conv, cuda)


@pytest.mark.slow
def test_compiled_training_forward_gives_the_eager_losses(torch_threads):
    torch.manual_seed(0)
    eager, compiled = _engine_state("device=cpu"), _engine_state("device=cpu", "train.compile=true")
    compiled.model.load_state_dict(eager.model.state_dict())
    x = torch.randn(8, 3, 8, 8)
    assert torch.allclose(eager.net(x), compiled.net(x), atol=1e-5)
    assert compiled.net is not compiled.model  # checkpoints keep the plain module's names
