"""The pack as a user installs it: the built wheel, its metadata, and resolution beside another Airflow 3.

The wheel is built once per module with uv (``uv build --wheel``, the backend in pyproject). Resolution
runs ``uv pip install --dry-run`` into a fresh venv against PyPI, so it needs the network to PyPI
(as ``make install`` does); nothing is installed with dependencies.
"""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.support.env import REPO
from tests.support.specs import write_spec
from tests.support.waiting import DEADLINE

UV = Path(sys.executable).parent / "uv"
LOCKED_AIRFLOW = "3.3.2"
FORCED_EXTRAS = ("celery", "redis", "postgres", "amazon")  # what a user's own Airflow must not be made to install


def uv(*args: str, **kwargs) -> subprocess.CompletedProcess:
    if not UV.exists():
        pytest.fail(f"uv is missing at {UV}: `make install` puts it in the venv")
    return subprocess.run([str(UV), *args], capture_output=True, text=True, timeout=DEADLINE, **kwargs)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = uv("build", "--wheel", "--out-dir", str(out), str(REPO))
    assert built.returncode == 0, built.stderr[-3000:]
    [path] = out.glob("airflow_mlops_pack-*.whl")
    return path


@pytest.fixture(scope="module")
def metadata(wheel) -> dict:
    with zipfile.ZipFile(wheel) as zf:
        [meta] = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        [eps] = [n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")]
        message = Parser().parsestr(zf.read(meta).decode())
        entry_points = configparser.ConfigParser(delimiters=("=",))
        entry_points.read_string(zf.read(eps).decode())
    return {"message": message, "requires": [Requirement(r) for r in message.get_all("Requires-Dist")],
            "entry_points": entry_points, "names": zipfile.ZipFile(wheel).namelist()}


def _fresh_venv(path: Path) -> Path:
    made = uv("venv", "--quiet", "--python", sys.executable, str(path))
    assert made.returncode == 0, made.stderr
    return path / "bin" / "python"


def test_the_wheel_holds_the_package_and_nothing_of_the_checkout(wheel, metadata):
    names = metadata["names"]
    dist_info = {n.split("/")[0] for n in names if ".dist-info/" in n}
    assert len(dist_info) == 1
    outside = [n for n in names if not n.startswith("mlops_pack/") and not n.startswith(f"{next(iter(dist_info))}/")]
    assert outside == [], f"the wheel carries files outside the package: {outside[:10]}"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "egg-info" in n]
    # every source and data file of the package is in it (ui/, cli/, core/... whatever they hold)
    package = REPO / "plugins" / "mlops_pack"
    expected = {f"mlops_pack/{p.relative_to(package).as_posix()}" for p in package.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert expected - set(names) == set()
    assert {"mlops_pack/plugin.py", "mlops_pack/provider.py", "mlops_pack/ui/app.py"} <= set(names)
    # building wrote no *.egg-info beside the package: on sys.path it is a second "airflow-mlops-pack",
    # whose entry point Airflow loads again ("Plugin 'mlops_pack' already registered")
    assert list((REPO / "plugins").glob("*.egg-info")) == []
    eps = metadata["entry_points"]
    assert dict(eps["airflow.plugins"]) == {"mlops_pack": "mlops_pack.plugin:MlopsPackPlugin"}
    assert dict(eps["apache_airflow_provider"]) == {"provider_info": "mlops_pack.provider:get_provider_info"}


def _locked() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, version = line.split("==")
            pins[name.strip().lower()] = version.split(";")[0].strip()
    return pins


def test_metadata_states_ranges_the_lock_satisfies(metadata):
    message = metadata["message"]
    assert message["Requires-Python"] in ("<3.12,>=3.11", ">=3.11,<3.12")  # 3.11 is what runs here
    base = [r for r in metadata["requires"] if r.marker is None]
    pinned = [str(r) for r in base if any(s.operator in ("==", "===") for s in r.specifier)]
    assert pinned == [], f"install requirements pin exact versions: {pinned}"
    [airflow] = [r for r in base if r.name == "apache-airflow"]
    assert airflow.extras == set(), f"a user's Airflow gets extras forced on it: {airflow}"
    assert airflow.specifier.contains("3.2.0") and airflow.specifier.contains(LOCKED_AIRFLOW)
    assert not airflow.specifier.contains("3.1.8") and not airflow.specifier.contains("4.0.0")
    forced = [str(r) for r in base if any(word in r.name for word in FORCED_EXTRAS)]
    assert forced == [], f"production-only packages in the install requirements: {forced}"
    assert {"celery", "postgres", "amazon", "dev"} <= set(message.get_all("Provides-Extra"))
    # the exact versions the demo and the tests run (requirements.lock) lie inside every range
    pins = _locked()
    for req in metadata["requires"]:
        name = req.name.lower()
        assert name in pins, f"{req} is not in requirements.lock (run `make lock`)"
        assert req.specifier.contains(pins[name], prereleases=True), f"lock has {name}=={pins[name]}, outside {req}"


def _planned(output: str) -> dict[str, str]:
    """name -> version of the packages ``uv pip install --dry-run`` would install."""
    plan = {}
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("+ ") and "==" in line:
            name, version = line[2:].split("==", 1)
            plan[name.strip().lower()] = version.strip()
        elif line.startswith("+ airflow-mlops-pack @ "):
            plan["airflow-mlops-pack"] = line.split(" @ ", 1)[1]
    return plan


@pytest.mark.parametrize("airflow", ["3.3.1", "3.2.0"])  # a patch release beside the lock's, and the floor
def test_installs_into_a_fresh_venv_beside_another_airflow_3(wheel, tmp_path, airflow):
    python = _fresh_venv(tmp_path / "venv")
    plan = uv("pip", "install", "--dry-run", "--python", str(python),
              f"airflow-mlops-pack @ {wheel.as_uri()}", f"apache-airflow=={airflow}")
    assert plan.returncode == 0, plan.stderr[-3000:]
    planned = _planned(plan.stderr + plan.stdout)
    assert planned["airflow-mlops-pack"] == wheel.as_uri()
    assert planned["apache-airflow"] == airflow and planned["apache-airflow-core"] == airflow
    for name in ("mlflow", "great-expectations", "evidently", "scikit-learn", "pandas"):
        assert name in planned, name
    forced = sorted(n for n in planned if any(word in n for word in FORCED_EXTRAS))
    assert forced == [], f"installing the pack would add {forced}"


def test_an_airflow_older_than_the_floor_is_refused(wheel, tmp_path):
    python = _fresh_venv(tmp_path / "venv")
    plan = uv("pip", "install", "--dry-run", "--python", str(python),
              f"airflow-mlops-pack @ {wheel.as_uri()}", "apache-airflow==3.1.8")
    assert plan.returncode != 0
    assert "apache-airflow" in plan.stderr and "airflow-mlops-pack" in plan.stderr


def test_the_installed_wheel_reads_specs_from_airflow_home(wheel, tmp_path):
    """The wheel alone (``--no-deps``, Airflow from this venv) finds pipelines in $AIRFLOW_HOME/pipelines."""
    python = _fresh_venv(tmp_path / "venv")
    done = uv("pip", "install", "--quiet", "--no-deps", "--python", str(python), str(wheel))
    assert done.returncode == 0, done.stderr
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # Airflow and the libraries come from this venv's site-packages, listed after the fresh venv's own
    # (a plain path entry: that folder's .pth files, among them this checkout's editable install, are not read)
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    home = tmp_path / "home"
    write_spec(home / "pipelines", "http://127.0.0.1:9", name="shop")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__") and k != "PYTHONPATH"}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False",
               AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"))
    code = ("import json, mlops_pack\nfrom mlops_pack import settings\n"
            "from mlops_pack.dag_factory import build_dags, spec_file\n"
            "print(json.dumps({'file': mlops_pack.__file__, 'pipelines_dir': str(settings.pipelines_dir()),"
            " 'dags': sorted(build_dags(spec_file('shop')))}))\n")
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=DEADLINE)
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(found["file"]).is_relative_to(site)  # the wheel's copy, not this checkout's plugins/
    assert found["pipelines_dir"] == str(home / "pipelines")
    assert found["dags"] == ["shop__ingest", "shop__monitor", "shop__rollback", "shop__score", "shop__train"]


def test_airflow_registers_the_plugin_once_with_the_checkout_as_plugins_folder():
    """What the tests and the demo configure (plugins_folder = this checkout's plugins/, the package
    installed): Airflow's plugin manager, which the api-server's plugin routes and ``airflow plugins``
    read, loads mlops_pack once, from its entry point, without import errors."""
    code = ("import json\nfrom airflow import plugins_manager as pm\n"
            "print(json.dumps({'plugins': [[p['name'], str(p['source'])] for p in pm.get_plugin_info()],"
            " 'errors': pm.get_import_errors()}))\n")
    env = {**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=DEADLINE)
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["errors"] == {}
    # Other installed providers register plugins of their own (OpenLineage's, from the lineage extra).
    [source] = [source for name, source in found["plugins"] if name == "mlops_pack"]
    assert "airflow-mlops-pack" in source and "EntryPoint" in source
