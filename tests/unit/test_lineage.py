"""OpenLineage dataset names of the pack's partitions, model versions and sources, and the graph of events."""

from __future__ import annotations

import json

import pytest
from mlops_pack.core.lineage import (
    Dataset,
    kind_path_exists,
    lineage_graph,
    model_version_dataset,
    source_dataset,
    storage_dataset,
)


@pytest.mark.parametrize(("uri", "expected"), [
    ("file:///srv/mlops/shop/raw/2026-11-01", Dataset("file", "/srv/mlops/shop/raw/2026-11-01", "raw")),
    ("file:///srv/mlops/shop/validated/2026-11-01/", Dataset("file", "/srv/mlops/shop/validated/2026-11-01",
                                                              "validated")),
    ("/srv/mlops/shop/predictions/2026-11-01__v3", Dataset("file", "/srv/mlops/shop/predictions/2026-11-01__v3",
                                                           "predictions")),
    ("s3://bucket/mlops/shop/training/a_to_b__1f/train", Dataset("s3://bucket", "mlops/shop/training/a_to_b__1f/train",
                                                                 "training set")),
    ("s3://bucket/mlops/shop/training/a_to_b__1f/holdout", Dataset("s3://bucket",
                                                                   "mlops/shop/training/a_to_b__1f/holdout",
                                                                   "holdout set")),
    ("s3://key:secret@bucket/mlops/shop/reports/drift/2026-11-01",
     Dataset("s3://bucket", "mlops/shop/reports/drift/2026-11-01", "drift report")),
    ("file:///srv/elsewhere/x", Dataset("file", "/srv/elsewhere/x", "file")),
])
def test_partitions_are_named_in_their_storage_namespace(uri, expected):
    assert storage_dataset(uri) == expected


def test_a_uri_without_a_path_is_refused():
    with pytest.raises(ValueError, match="'s3://bucket' names no folder"):
        storage_dataset("s3://bucket")


def test_model_versions_live_in_the_registry_namespace_without_credentials():
    assert model_version_dataset("postgresql://ml:s3cret@db:5432/mlflow?sslmode=require", "shop", "7") == Dataset(
        "postgresql://db:5432/mlflow", "shop/versions/7", "model version")
    assert model_version_dataset("sqlite:////home/a/mlflow.db", "shop", 2).namespace == "sqlite:////home/a/mlflow.db"
    with pytest.raises(ValueError, match="'latest' of 'shop' is not a version number"):
        model_version_dataset("sqlite:///m.db", "shop", "latest")


def test_a_web_source_is_its_site_and_start_path():
    assert source_dataset("https://user:pw@example.test:8443/list?page=1") == Dataset(
        "https://example.test:8443", "/list", "source")
    with pytest.raises(ValueError, match="not an http"):
        source_dataset("ftp://example.test/x")


def _event(job, inputs, outputs, event_type="COMPLETE", derived=None):
    def ds(d, lineage=None):
        facets = {"mlopsPack": {"kind": d.kind}}
        if lineage:
            facets["columnLineage"] = {"fields": {}, "dataset": [{"namespace": s.namespace, "name": s.name,
                                                                  "field": ""} for s in lineage]}
        return {"namespace": d.namespace, "name": d.name, "facets": facets}

    return {"eventType": event_type, "job": {"namespace": "airflow", "name": job},
            "inputs": [ds(d) for d in inputs], "outputs": [ds(d, (derived or {}).get(d)) for d in outputs]}


def test_the_graph_joins_jobs_by_their_datasets_and_dataset_level_lineage():
    site, raw = Dataset("http://h", "/l", "source"), storage_dataset("file:///d/p/raw/k")
    validated, train = storage_dataset("file:///d/p/validated/k"), storage_dataset("file:///d/p/training/w/train")
    version = model_version_dataset("sqlite:///m.db", "p", 1)
    events = [_event("p__ingest.scrape", [site], [raw], "START"), _event("p__ingest.scrape", [site], [raw]),
              _event("p__ingest.validate", [raw], [validated]),
              _event("p__train.train", [validated], [train, version], derived={version: [train]})]
    graph = lineage_graph(events)
    assert graph["jobs"]["p__train.train"] == {"inputs": {("file", validated.name)},
                                               "outputs": {("file", train.name), (version.namespace, version.name)}}
    key = lambda d: (d.namespace, d.name)  # noqa: E731
    assert (key(train), key(version)) in graph["edges"]  # the version was fit on the training set
    assert kind_path_exists(graph, ["source", "raw", "validated", "training set", "model version"]) == [
        key(site), key(raw), key(validated), key(train), key(version)]
    assert kind_path_exists(graph, ["source", "validated"]) is None  # no job reads the site and writes validated
    assert lineage_graph([events[0]])["edges"] == set()  # a START event says what a run will do, not what it did


def test_the_layout_puts_each_job_between_what_it_read_and_wrote():
    from mlops_pack.core.lineage import layout

    site, raw = Dataset("http://h", "/l", "source"), storage_dataset("file:///d/p/raw/k")
    train, version = storage_dataset("file:///d/p/training/w/train"), model_version_dataset("sqlite:///m.db", "p", 1)
    graph = lineage_graph([_event("p__ingest.scrape", [site], [raw]), _event("p__train.train", [raw], [train, version],
                                                                           derived={version: [train]}),
                           _event("p__train.publish", [], [])])
    key = lambda d: ("d", (d.namespace, d.name))  # noqa: E731
    succ, columns = layout(graph)
    assert list(columns.values()) == [[key(site)], [("j", "p__ingest.scrape")], [key(raw)], [("j", "p__train.train")],
                                      [key(train)], [key(version)]]  # the version after the set it was fit on
    assert key(version) in succ[key(train)] and ("j", "p__train.publish") not in succ  # a job with no dataset


def test_an_operator_hands_its_lineage_to_the_openlineage_provider(tmp_path):
    """What a task recorded comes out as the provider's OperatorLineage: datasets with the kind facet, the
    version's dataset-level lineage, and the run facets, in the JSON the provider sends."""
    from mlops_pack.operators.drift import EvidentlyDriftOperator
    from openlineage.client.serde import Serde

    from tests.support.specs import write_spec

    operator = EvidentlyDriftOperator(task_id="drift_report", prediction_partitions=["k"],
                                      spec_path=str(write_spec(tmp_path, "http://127.0.0.1:9")))
    train, version = storage_dataset("file:///d/p/training/w/train"), model_version_dataset("sqlite:///m.db", "p", 2)
    operator.lineage.read(train)
    operator.lineage.wrote(version, derived_from=[train])
    operator.lineage.facets["drift"] = {"drift": True, "share": 0.6, "drifted_columns": ["city"]}
    lineage = operator.get_openlineage_facets_on_complete(task_instance=None)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [("file", "/d/p/training/w/train")]
    output = json.loads(Serde.to_json(lineage.outputs[0]))
    assert output["facets"]["mlopsPack"]["kind"] == "model version"
    assert output["facets"]["columnLineage"]["dataset"][0]["name"] == "/d/p/training/w/train"
    assert json.loads(Serde.to_json(lineage.run_facets["drift"]))["drifted_columns"] == ["city"]
    event = {"eventType": "COMPLETE", "job": {"name": "p__monitor.drift_report"}, "inputs": [
        json.loads(Serde.to_json(d)) for d in lineage.inputs], "outputs": [output]}
    assert (("file", train.name), ("sqlite:///m.db", "p/versions/2")) in lineage_graph([event])["edges"]
