"""Every DAG loads, parsing stays light, and a broken spec breaks only its own DAG file."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.env import REPO
from tests.support.specs import write_spec

# boto3: an asset URI scheme without ``x-`` makes Airflow load every provider's asset handlers (Amazon's
# imports boto3), seconds per parse on a loaded machine (issue 27).
HEAVY = ("pandas", "sklearn", "mlflow", "great_expectations", "evidently", "pyarrow", "boto3",
         "airflow.providers.amazon.aws")


def _dagbag(folder):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(folder))


def test_every_dag_loads_with_its_topology():
    bag = _dagbag(REPO / "dags")
    assert bag.import_errors == {}
    assert {"listings__ingest", "listings__train", "listings__score", "listings__monitor"} <= set(bag.dag_ids)
    train = bag.dags["listings__train"]
    assert [t.task_id for t in train.topological_sort()] == ["train", "promote", "publish_champion"]
    assert train.get_task("publish_champion").outlets[0].uri == "x-mlops://listings/champion"
    ingest = bag.dags["listings__ingest"]
    assert ingest.get_task("validate").outlets[0].uri == "x-mlops://listings/validated"
    assert bag.dags["listings__monitor"].get_task("signal_drift").outlets[0].uri == "x-mlops://listings/drift"
    rollback = bag.dags["listings__rollback"]
    assert rollback.schedule is None and set(rollback.params) == {"target_version", "reason"}
    assert rollback.get_task("rollback").pool == train.get_task("promote").pool == "mlops_registry"


def test_parsing_dags_and_operators_loads_no_heavy_library():
    code = f"""
import importlib, importlib.util, pathlib, sys
sys.path.insert(0, {str(REPO / 'plugins')!r})
for f in sorted(pathlib.Path({str(REPO / 'dags')!r}).glob('*.py')):
    spec = importlib.util.spec_from_file_location(f.stem, f)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
for m in ('scrape', 'validate', 'train', 'promote', 'score', 'drift'):
    importlib.import_module('mlops_pack.operators.' + m)
for m in ('mlops_pack.hooks.mlflow', 'mlops_pack.hooks.scrape', 'mlops_pack.hooks.storage',
          'mlops_pack.links', 'mlops_pack.plugin', 'mlops_pack.provider'):
    importlib.import_module(m)
print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, check=True)
    [line] = [x for x in out.stdout.splitlines() if x.startswith("HEAVY=")]
    assert line == "HEAVY=", f"heavy modules loaded at parse time: {line}"


def test_a_bad_spec_is_an_import_error_of_its_own_file(tmp_path, monkeypatch):
    specs, dags = tmp_path / "pipelines", tmp_path / "dags"
    write_spec(specs, "http://127.0.0.1:9", name="good")
    write_spec(specs, "http://127.0.0.1:9", name="broken", **{"  target: price": "  target: asking_price"})
    dags.mkdir()
    for name in ("good", "broken"):
        (dags / f"{name}.py").write_text(
            "# airflow dag file\nfrom mlops_pack.dag_factory import build_dags, spec_file\n"
            f"globals().update(build_dags(spec_file({name!r})))\n")
    monkeypatch.setenv("AIRFLOW__MLOPS__PIPELINES_DIR", str(specs))
    bag = _dagbag(dags)
    assert set(bag.dag_ids) == {"good__ingest", "good__train", "good__score", "good__monitor", "good__rollback"}
    [(path, error)] = bag.import_errors.items()
    assert path.endswith("broken.py")
    assert str(specs / "broken.yaml") in error
    assert "model.target: 'asking_price' is not a scraped column" in error


def test_ingest_on_change_starts_with_the_deferrable_sensor(tmp_path):
    from mlops_pack.dag_factory import build_dags

    path = write_spec(tmp_path, "http://127.0.0.1:9", **{'ingest: "0 2 * * *"': "ingest: null\n  wait_for_change: true"})
    ingest = build_dags(path)["listings__ingest"]
    sensor = ingest.get_task("wait_for_change")
    assert sensor.deferrable and sensor.downstream_task_ids == {"scrape"}
    assert ingest.schedule is None
