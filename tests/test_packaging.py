"""Packaging: the wheel carries every sample set and all the code, nothing else; sample names resolve
without a checkout; `dlkit sample`; `--version` and the manifest's commit; a missing extra stops with
exit 2 and its pip line; the code compiles and imports under every Python 3.10+ on the machine.

Installing the wheel into a fresh venv and running README's demo there is .ci/run's job (minutes, and
the registry for dependencies); here the wheel is built offline with the venv's setuptools.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT, TINY, expect_user_error

WHEEL_SOURCES = ("pyproject.toml", "README.md", "dlkit", "recipes", "sample_data")
EXTRAS = {"export": "onnx", "tune": "optuna", "chem": "rdkit", "face": "cv2", "report": "tensorboard"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel as `pip wheel .` builds it, from a copy of the sources (no build/ in the checkout)."""
    pytest.importorskip("setuptools", minversion="70.1")  # bdist_wheel built in, no `wheel` package
    tmp = tmp_path_factory.mktemp("wheel")
    for name in WHEEL_SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp / "src" / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            (tmp / "src").mkdir(exist_ok=True)
            shutil.copy2(source, tmp / "src" / name)
    build = "import sys; from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))"
    done = subprocess.run(
        [sys.executable, "-c", build, str(tmp / "dist")],
        cwd=tmp / "src",
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp / "dist" / done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def site(wheel, tmp_path_factory) -> Path:
    """The wheel unpacked as pip lays it out in site-packages."""
    out = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(out)
    return out


@pytest.fixture(scope="module")
def tiny_run(tiny_images, tmp_path_factory) -> Path:
    """A two-step vision run, for the manifest and for `export` without its extra."""
    from dlkit.cli import main

    out = tmp_path_factory.mktemp("runs") / "tiny"
    argv = sys.argv
    sys.argv = ["dlkit", "train", "vision-classification", "--data", str(tiny_images), "--out", str(out)]
    sys.argv += ["--json", "train.max_steps=2", *TINY]
    try:
        main()
    except SystemExit as exc:
        assert exc.code in (0, None)
    finally:
        sys.argv = argv
    return out


def files_under(folder: Path) -> set[str]:
    return {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


def test_wheel_ships_every_sample_file_and_all_code_but_no_tests_runs_or_caches(wheel):
    import dlkit

    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = z.read(f"dlkit-{dlkit.__version__}.dist-info/METADATA").decode()
    for folder, package in (
        ("sample_data", "dlkit_samples"),
        ("dlkit", "dlkit"),
        ("recipes", "dlkit_recipes"),
    ):
        wanted = {f"{package}/{rel}" for rel in files_under(ROOT / folder)}
        assert not wanted - names, f"missing from the wheel: {sorted(wanted - names)[:5]}"
    assert {n.split("/")[0] for n in names} == {
        "dlkit",
        "dlkit_recipes",
        "dlkit_samples",
        f"dlkit-{dlkit.__version__}.dist-info",
    }
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or ".egg-info" in n]
    assert wheel.stat().st_size < 20e6, f"{wheel.stat().st_size / 1e6:.1f} MB"
    assert f"\nVersion: {dlkit.__version__}\n" in meta
    assert "\nRequires-Python: >=3.10\n" in meta
    for minor in (10, 11, 12, 13):
        assert f"Classifier: Programming Language :: Python :: 3.{minor}\n" in meta
    for extra in (*EXTRAS, "all"):
        assert f"Provides-Extra: {extra}\n" in meta


def test_sample_names_resolve_to_the_installed_copy_when_there_is_no_checkout(site, monkeypatch, tmp_path):
    from dlkit import samples
    from dlkit.errors import UserError
    from dlkit.jobs.common import resolve_data_path
    from dlkit.registry import get_recipe

    installed = site / "dlkit_samples"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(samples, "checkout", lambda: ROOT)  # a clone: the checkout's own files
    assert (
        samples.locate("sample_data/tabular_fraud/transactions.csv")
        == ROOT / "sample_data/tabular_fraud/transactions.csv"
    )

    monkeypatch.setattr(samples, "checkout", lambda: None)  # a wheel: no checkout
    monkeypatch.setattr(samples, "installed_root", lambda: installed)
    fraud = get_recipe("tabular-fraud")
    assert resolve_data_path(None, fraud) == installed / "tabular_fraud/transactions.csv"
    vision = get_recipe("vision-classification")
    assert resolve_data_path(None, vision) == installed / "vision_classification"
    for name in vision.sample_inputs:  # README's predict example names them
        assert samples.resolve_input(name) == str(installed / Path(name).relative_to("sample_data"))
    assert samples.resolve_input("great film") == "great film"  # a text input stays a text
    assert samples.resolve_input("sample_data/nope.csv") == "sample_data/nope.csv"  # the recipe names it

    monkeypatch.setattr(samples, "installed_root", lambda: None)  # neither: the usual message
    with pytest.raises(UserError, match="does not exist"):
        resolve_data_path(None, fraud)


def test_the_unpacked_wheel_finds_its_samples_and_has_no_commit(site, tmp_path):
    """dlkit imported from the wheel's files, from an empty folder: the real lookup, no monkeypatching."""
    code = (
        "import dlkit.samples as s, dlkit.version as v;"
        "print(s.locate('sample_data/tabular_fraud/transactions.csv')); print(v.version_line())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(site)},
    )
    assert done.returncode == 0, done.stderr
    located, line = done.stdout.splitlines()
    assert Path(located) == site / "dlkit_samples/tabular_fraud/transactions.csv"
    assert re.fullmatch(rf"dlkit \S+ from {re.escape(str(site / 'dlkit'))} \(python [\d.]+\)", line), line


@pytest.mark.parametrize("recipe", ["tabular-fraud", "vision-classification"])  # a file; a folder
def test_sample_copies_a_layout_that_check_accepts(cli, tmp_path, recipe):
    res = cli("sample", recipe, "--out", tmp_path / "mine", "--json")
    assert res.code == 0, res.err
    result = json.loads(res.out)
    assert Path(result["out"]) == tmp_path / "mine"
    assert result["files"] == len(files_under(tmp_path / "mine")) > 0
    assert "README.md" in result["layout"]
    res = cli("check", recipe, "--data", result["data"], "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["fatal"] == 0


def test_sample_covers_every_recipes_data_and_inputs(cli, tmp_path):
    from dlkit.registry import get_recipe, recipe_names

    for cls in map(get_recipe, recipe_names()):
        out = tmp_path / cls.name
        res = cli("sample", cls.name, "--out", out, "--json")
        assert res.code == 0, res.err
        assert Path(json.loads(res.out)["data"]).exists()
        for name in cls.sample_inputs:
            if Path(name).parts[0] == "sample_data":  # sample_data/<folder>/<rest> -> OUT/<rest>
                assert (out / Path(*Path(name).parts[2:])).exists(), f"{cls.name}: {name} not copied"


def test_sample_of_a_plugin_copies_its_sample_file_and_inputs(tmp_path):
    """A plug-in recipe names its sample by absolute path (package data): the file and its inputs."""
    from types import SimpleNamespace

    from dlkit.samples import copy_sample

    package = tmp_path / "dlkit_toy"
    package.mkdir()
    (package / "sample.csv").write_text("x,y\n1,2\n")
    (package / "new.csv").write_text("x\n3\n")
    toy = SimpleNamespace(
        name="toy", sample_data=str(package / "sample.csv"), sample_inputs=(str(package / "new.csv"),)
    )
    result = copy_sample(toy, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["new.csv", "sample.csv"]
    assert result["data"] == str(tmp_path / "out" / "sample.csv") and result["files"] == 2


def test_sample_refuses_a_folder_that_is_not_empty_and_without_out_only_shows(cli, tmp_path, monkeypatch):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    expect_user_error(cli("sample", "tabular-fraud", "--out", out), str(out), "not an empty folder")
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"
    expect_user_error(cli("sample", "tabular-fraud", "--out", out / "notes.txt"), "not an empty folder")

    (out / "notes.txt").unlink()  # an empty folder is fine
    assert cli("sample", "tabular-fraud", "--out", out).code == 0
    assert (out / "transactions.csv").is_file()

    monkeypatch.chdir(tmp_path / "mine")
    before = sorted(p.name for p in Path.cwd().iterdir())
    res = cli("sample", "vision-classification")
    assert res.code == 0, res.err
    text = " ".join(res.err.split())
    assert "vision_classification" in text and "train/ (" in text and "--out DIR" in text
    assert sorted(p.name for p in Path.cwd().iterdir()) == before  # nothing written
    expect_user_error(cli("sample", "no-such-recipe"), "no-such-recipe")


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def test_version_prints_the_package_version_and_the_checkouts_commit(cli):
    import dlkit
    from dlkit.version import git_commit

    res = cli("--version")
    assert res.code == 0
    line = res.out.strip()
    match = re.fullmatch(
        r"dlkit (\S+)(?: \(commit ([0-9a-f]{7,})(\+dirty)?\))? from (\S+) \(python [\d.]+\)", line
    )
    assert match, line
    assert match[1] == dlkit.__version__ and Path(match[4]) == ROOT / "dlkit"
    if shutil.which("git") and (ROOT / ".git").exists() and git_commit():
        assert match[2] == _git(ROOT, "rev-parse", "--short", "HEAD")


@pytest.mark.skipif(not shutil.which("git"), reason="git is not installed")
def test_git_commit_is_the_short_head_plus_dirty_and_none_without_git(tmp_path, monkeypatch):
    from dlkit import version

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pyproject.toml").write_text("[project]\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "x")
    head = _git(repo, "rev-parse", "--short", "HEAD")
    monkeypatch.setattr(version, "checkout", lambda: repo)
    checks = []
    for change in (None, "tracked", "new file"):
        if change == "tracked":
            (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
        elif change == "new file":
            _git(repo, "checkout", "-q", "--", "pyproject.toml")
            (repo / "new.py").write_text("")
        version.git_commit.cache_clear()
        checks.append(version.git_commit())
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # git cannot be found: None, never an error
    version.git_commit.cache_clear()
    checks.append(version.git_commit())
    version.git_commit.cache_clear()
    assert checks == [head, f"{head}+dirty", f"{head}+dirty", None]


def test_manifest_names_the_version_and_commit(tiny_run):
    import dlkit
    from dlkit.version import git_commit

    manifest = json.loads((tiny_run / "manifest.json").read_text())
    assert manifest["dlkit"] == dlkit.__version__
    assert manifest["git_commit"] == git_commit()


def test_a_missing_extra_stops_with_exit_2_and_its_pip_line(tiny_run, tiny_images, tmp_path):
    """In a process where the optional packages cannot be imported, as in a venv without the extras."""
    space = tmp_path / "space.yaml"
    space.write_text("model.dropout: {low: 0.0, high: 0.5}\n")
    jobs = {
        "chem": ["train", "drug-property", "--out", tmp_path / "drug"],
        "export": ["export", tiny_run, "--format", "onnx"],
        "tune": ["tune", "tabular-fraud", "--space", space, "--trials", "1", "--out", tmp_path / "study"],
        "report": ["train", "vision-classification", "--data", tiny_images, "--out", tmp_path / "tb"]
        + ["logging.tensorboard=true"],
        "face": ["train", "vision-face", "--out", tmp_path / "face", "data.crop_faces=true"],
    }
    script = (
        "import json, sys\n"
        f"for name in {[*EXTRAS.values(), 'onnxruntime']!r}:\n"
        "    sys.modules[name] = None\n"
        "from dlkit.cli import main\n"
        "for args in json.loads(sys.argv[1]):\n"
        "    sys.argv = ['dlkit', *args]\n"
        "    try:\n"
        "        main()\n"
        "        code = 0\n"
        "    except SystemExit as exc:\n"
        "        code = exc.code\n"
        "    print(f'@@exit {code}', file=sys.stderr, flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps([[str(a) for a in job] for job in jobs.values()])],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    parts = re.split(r"@@exit (\S+)\n", done.stderr)
    outputs, codes = parts[0:-1:2], parts[1::2]
    assert len(codes) == len(jobs), done.stderr[-3000:]
    for (extra, job), code, err in zip(jobs.items(), codes, outputs, strict=True):
        text = " ".join(err.split())
        assert code == "2" and f"pip install 'dlkit[{extra}]'" in text, (job, code, err)
        assert "Traceback" not in err
    assert not [p.name for p in tmp_path.iterdir() if p.name != "space.yaml"]  # stopped before any folder


def _pythons() -> dict[str, str]:
    """Every interpreter 3.10+ on PATH or under pyenv, one per minor version: {"3.10": path, ...}."""
    candidates = [shutil.which(f"python3.{m}") for m in range(10, 15)]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += [str(p) for p in sorted(pyenv.glob("3.1*/bin/python3"))]
    found: dict[str, str] = {}
    for exe in filter(None, candidates):
        done = subprocess.run(
            [exe, "-c", "import sys; print(sys.version_info[1])"], capture_output=True, text=True
        )
        if done.returncode == 0 and int(done.stdout) >= 10:
            found.setdefault(f"3.{done.stdout.strip()}", exe)
    return dict(sorted(found.items(), key=lambda kv: int(kv[0][2:]))) or {"current": sys.executable}


PYTHONS = _pythons()


@pytest.mark.parametrize("python", PYTHONS.values(), ids=PYTHONS.keys())
def test_the_code_compiles_and_the_light_modules_import_under_each_python(python):
    """Syntax of every module (and generator) under each interpreter; the modules that need only the
    standard library import and find the sample data. (.ci/run imports the CLI from the wheel too.)"""
    code = (
        "import sys, pathlib; root = pathlib.Path(sys.argv[1]); sys.path.insert(0, str(root))\n"
        "for folder in ('dlkit', 'recipes', 'sample_data'):\n"
        "    for path in (root / folder).rglob('*.py'):\n"
        "        compile(path.read_text(encoding='utf-8'), str(path), 'exec')\n"
        "import dlkit.errors, dlkit.extras, dlkit.samples, dlkit.version\n"
        "assert dlkit.samples.locate('sample_data/tabular_fraud/transactions.csv')\n"
        "print(dlkit.version.version_line())\n"
    )
    done = subprocess.run([python, "-I", "-c", code, str(ROOT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("dlkit ")
