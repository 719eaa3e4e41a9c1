"""The labels and outcomes DAGs: built from a spec's labels section, wired to the loop's assets, light to parse."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.env import REPO
from tests.support.specs import write_spec

LABELS = {"\npromotion:\n": "\nretrain:\n  triggers: [drift, performance]\n  require_decay_for_drift: true\n"
          "labels:\n  kind: later_partitions\npromotion:\n"}


def uris(condition) -> set[str]:
    """URIs of the assets in a schedule's condition (an asset, or any/all of them)."""
    if hasattr(condition, "objects"):
        return set().union(*(uris(c) for c in condition.objects))
    return {condition.uri}


def test_a_spec_with_labels_gets_labels_and_outcomes_dags_and_decay_retrains(tmp_path):
    from mlops_pack.dag_factory import build_dags

    dags = build_dags(write_spec(tmp_path, "http://127.0.0.1:9", **LABELS))
    labels, outcomes = dags["listings__labels"], dags["listings__outcomes"]
    assert [t.task_id for t in labels.tasks] == ["labels"]
    assert labels.get_task("labels").outlets[0].uri == "x-mlops://listings/labels"
    assert labels.timetable.asset_condition.uri == "x-mlops://listings/validated"
    assert [t.task_id for t in outcomes.topological_sort()] == ["realized_performance", "signal_decay"]
    assert outcomes.get_task("signal_decay").outlets[0].uri == "x-mlops://listings/performance"
    scheduled_on = uris(outcomes.timetable.asset_condition)
    assert scheduled_on == {"x-mlops://listings/labels", "x-mlops://listings/predictions"}
    train_on = uris(dags["listings__train"].timetable.asset_condition)
    assert train_on == {"x-mlops://listings/validated", "x-mlops://listings/drift", "x-mlops://listings/performance"}


def test_label_files_are_read_on_their_cron_and_specs_without_labels_get_no_outcome_dags(tmp_path):
    from mlops_pack.dag_factory import build_dags

    files = {"\npromotion:\n": "\nlabels:\n  kind: files\n  url: file:///tmp/labels\n  cron: '*/5 * * * *'\n"
             "promotion:\n"}
    labels = build_dags(write_spec(tmp_path / "a", "http://127.0.0.1:9", **files))["listings__labels"]
    assert labels.timetable.expression == "*/5 * * * *"
    plain = build_dags(write_spec(tmp_path / "b", "http://127.0.0.1:9"))
    assert not {"listings__labels", "listings__outcomes"} & set(plain)
    train_on = uris(plain["listings__train"].timetable.asset_condition)
    assert "x-mlops://listings/performance" not in train_on


def test_parsing_the_outcome_dags_loads_no_heavy_library(tmp_path):
    spec = write_spec(tmp_path, "http://127.0.0.1:9", **LABELS)
    code = f"""
import sys
sys.path.insert(0, {str(REPO / 'plugins')!r})
from mlops_pack.dag_factory import build_dags
assert 'listings__outcomes' in build_dags({str(spec)!r})
import mlops_pack.operators.labels, mlops_pack.operators.outcomes
print('HEAVY=' + ','.join(m for m in ('pandas', 'sklearn', 'mlflow', 'great_expectations', 'evidently', 'pyarrow')
                          if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, check=True)
    [line] = [x for x in out.stdout.splitlines() if x.startswith("HEAVY=")]
    assert line == "HEAVY=", f"heavy modules loaded at parse time: {line}"
