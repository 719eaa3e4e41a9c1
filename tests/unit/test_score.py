"""core/score.py: a Parquet partition streamed through a real model, chunk by chunk, with lineage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.sdk import ObjectStoragePath
from mlops_pack.core.score import ScoringError, score_parquet
from sklearn.linear_model import LinearRegression

LINEAGE = {"model_name": "listings", "model_version": "7", "scoring_run": "run-1"}


@pytest.fixture
def model() -> LinearRegression:
    x = pd.DataFrame({"area": [20.0, 40.0, 60.0, 80.0], "rooms": [1.0, 2.0, 2.0, 3.0]})
    return LinearRegression().fit(x, 1000 * x["area"] + 500 * x["rooms"])


def partition(tmp_path, rows: int = 250) -> ObjectStoragePath:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"listing_id": [f"id{i}" for i in range(rows)], "area": rng.uniform(10, 100, rows),
                          "rooms": rng.integers(1, 5, rows).astype(float), "notes": ["x"] * rows})
    path = ObjectStoragePath(f"file://{tmp_path}/validated/data.parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), fh, row_group_size=64)
    return path


def target(tmp_path) -> ObjectStoragePath:
    return ObjectStoragePath(f"file://{tmp_path}/predictions/p.parquet")


def test_every_row_is_predicted_in_chunks_with_lineage_and_kept_columns(tmp_path, model):
    source, out = partition(tmp_path), target(tmp_path)
    rows = score_parquet(model, source, out, ["area", "rooms"], LINEAGE, chunk_rows=100, keep=["listing_id"])
    scored = pd.read_parquet(out.path)
    original = pd.read_parquet(source.path)
    assert rows == len(scored) == 250
    assert list(scored.columns) == ["listing_id", "area", "rooms", "prediction", *LINEAGE]  # not "notes"
    assert scored["listing_id"].tolist() == original["listing_id"].tolist()  # order kept across chunks
    np.testing.assert_allclose(scored["prediction"], 1000 * original["area"] + 500 * original["rooms"])
    for name, value in LINEAGE.items():
        assert (scored[name] == value).all()


def test_a_missing_feature_is_named_and_nothing_is_written(tmp_path, model):
    out = target(tmp_path)
    with pytest.raises(ScoringError, match=r"lacks column\(s\) \['bathrooms'\]"):
        score_parquet(model, partition(tmp_path), out, ["area", "bathrooms"], LINEAGE, chunk_rows=100)
    assert not out.exists() and not list(out.parent.iterdir())  # no partial or temporary file left


def test_a_file_that_is_not_parquet_is_reported_by_name(tmp_path, model):
    source = ObjectStoragePath(f"file://{tmp_path}/validated/broken.parquet")
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(b"this is not parquet at all")
    with pytest.raises(ScoringError, match="broken.parquet is not a readable Parquet file"):
        score_parquet(model, source, target(tmp_path), ["area", "rooms"], LINEAGE, chunk_rows=100)
    assert not target(tmp_path).exists()


def test_rescoring_replaces_the_previous_predictions_whole(tmp_path, model):
    out = target(tmp_path)
    score_parquet(model, partition(tmp_path, rows=250), out, ["area", "rooms"], LINEAGE, chunk_rows=100)
    rescored = score_parquet(model, partition(tmp_path, rows=120), out, ["area", "rooms"], LINEAGE, chunk_rows=100)
    assert rescored == 120
    assert len(pd.read_parquet(out.path)) == 120


def test_an_empty_partition_gives_a_readable_empty_prediction_file(tmp_path, model):
    out = target(tmp_path)
    assert score_parquet(model, partition(tmp_path, rows=0), out, ["area", "rooms"], LINEAGE, chunk_rows=100) == 0
    table = pq.read_table(out.path)
    assert table.num_rows == 0 and "prediction" in table.column_names


class Broken:
    """A model whose predict fails on its second batch (a corrupt chunk, an out-of-memory kill ...)."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def predict(self, x):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("model blew up on batch 2")
        return self.model.predict(x)


def test_a_failing_model_leaves_no_file_and_no_thread(tmp_path, model):
    import threading

    out = target(tmp_path)
    with pytest.raises(RuntimeError, match="batch 2"):
        score_parquet(Broken(model), partition(tmp_path), out, ["area", "rooms"], LINEAGE, chunk_rows=100)
    assert not out.exists() and not list(out.parent.iterdir())
    assert not [t for t in threading.enumerate() if t.name.startswith(("score-reader", "score-writer", "score-predict"))]


def test_lineage_is_stored_once_per_file_not_once_per_row(tmp_path, model):
    out = target(tmp_path)
    score_parquet(model, partition(tmp_path), out, ["area", "rooms"], LINEAGE, chunk_rows=100)
    schema = pq.read_schema(out.path)
    assert all(pa.types.is_dictionary(schema.field(name).type) for name in LINEAGE)


def _classifier_partition(tmp_path, rows: int = 300) -> tuple[ObjectStoragePath, pd.DataFrame]:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"listing_id": [f"id{i}" for i in range(rows)], "area": rng.uniform(10, 100, rows),
                          "rooms": rng.integers(1, 5, rows).astype(float)})
    path = ObjectStoragePath(f"file://{tmp_path}/validated/classes.parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), fh, row_group_size=64)
    return path, frame


def _size_classifier(max_iter: int = 30):
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(2)
    x = pd.DataFrame({"area": rng.uniform(10, 100, 600), "rooms": rng.integers(1, 5, 600).astype(float)})
    labels = np.where(x["area"] < 40, "small", np.where(x["area"] < 70, "medium", "large"))
    return HistGradientBoostingClassifier(max_iter=max_iter, random_state=0).fit(x, labels)


def test_a_classifier_writes_its_label_and_one_probability_column_per_class(tmp_path):
    model = _size_classifier()
    source, original = _classifier_partition(tmp_path)
    out = target(tmp_path)
    score_parquet(model, source, out, ["area", "rooms"], LINEAGE, chunk_rows=64, keep=["listing_id"])
    scored = pd.read_parquet(out.path)
    probas = [f"proba_{c}" for c in model.classes_]
    assert probas == ["proba_large", "proba_medium", "proba_small"]
    assert list(scored.columns) == ["listing_id", "area", "rooms", "prediction", *probas, *LINEAGE]
    features = original[["area", "rooms"]]
    assert scored["prediction"].tolist() == model.predict(features).tolist()  # labels, not probabilities
    np.testing.assert_allclose(scored[probas].to_numpy(), model.predict_proba(features))
    np.testing.assert_allclose(scored[probas].sum(axis=1), 1.0)
    # the label is the most probable class on every row (chunking did not shift rows)
    assert (scored[probas].to_numpy().argmax(axis=1) == pd.Categorical(
        scored["prediction"], categories=model.classes_).codes).all()


def test_a_classifier_pipeline_gives_probabilities_and_a_regressor_none(tmp_path, model):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    source, original = _classifier_partition(tmp_path, rows=100)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        original[["area", "rooms"]], (original["area"] > 50).astype(int))
    out = target(tmp_path)
    score_parquet(pipeline, source, out, ["area", "rooms"], LINEAGE, chunk_rows=64)
    scored = pd.read_parquet(out.path)
    assert {"proba_0", "proba_1"} <= set(scored.columns)
    np.testing.assert_allclose(scored["proba_1"], pipeline.predict_proba(original[["area", "rooms"]])[:, 1])
    score_parquet(model, source, out, ["area", "rooms"], LINEAGE, chunk_rows=64)
    assert not [c for c in pd.read_parquet(out.path).columns if "proba" in c]


def test_a_shadow_model_scores_the_same_rows_into_shadow_columns(tmp_path):
    champion, challenger = _size_classifier(max_iter=30), _size_classifier(max_iter=3)
    source, original = _classifier_partition(tmp_path)
    out = target(tmp_path)
    lineage = {**LINEAGE, "shadow_model_version": "8"}
    rows = score_parquet(champion, source, out, ["area", "rooms"], lineage, chunk_rows=64, keep=["listing_id"],
                         shadow=challenger)
    scored = pd.read_parquet(out.path)
    features = original[["area", "rooms"]]
    assert rows == len(scored) == len(original)
    assert scored["prediction"].tolist() == champion.predict(features).tolist()
    assert scored["shadow_prediction"].tolist() == challenger.predict(features).tolist()
    shadow_probas = [f"shadow_proba_{c}" for c in challenger.classes_]
    np.testing.assert_allclose(scored[shadow_probas].to_numpy(), challenger.predict_proba(features))
    assert (scored["shadow_model_version"] == "8").all()


def test_an_input_column_named_like_an_output_column_is_refused(tmp_path, model):
    source = ObjectStoragePath(f"file://{tmp_path}/validated/clash.parquet")
    source.parent.mkdir(parents=True, exist_ok=True)
    with source.open("wb") as fh:
        pq.write_table(pa.table({"area": [1.0], "rooms": [1.0], "prediction": [0.0]}), fh)
    with pytest.raises(ScoringError, match=r"\['prediction'\] would appear twice"):
        score_parquet(model, source, target(tmp_path), ["area", "rooms"], LINEAGE, chunk_rows=100,
                      keep=["prediction"])


@pytest.mark.parametrize("workers", [1, 3])
def test_rows_keep_their_order_whatever_the_number_of_predict_workers(tmp_path, model, workers):
    source, out = partition(tmp_path, rows=1_000), target(tmp_path)
    # many small chunks, finishing in any order on the workers, over row groups of another size
    rows = score_parquet(model, source, out, ["area", "rooms"], LINEAGE, chunk_rows=37, keep=["listing_id"],
                         workers=workers)
    scored, original = pd.read_parquet(out.path), pd.read_parquet(source.path)
    assert rows == len(scored) == 1_000
    assert scored["listing_id"].tolist() == original["listing_id"].tolist()
    np.testing.assert_allclose(scored["prediction"], 1000 * original["area"] + 500 * original["rooms"])


def test_float_columns_skip_the_dictionary_and_the_others_keep_it(tmp_path, model):
    out = target(tmp_path)
    score_parquet(model, partition(tmp_path), out, ["area", "rooms"], LINEAGE, chunk_rows=100, keep=["listing_id"])
    group = pq.ParquetFile(out.path).metadata.row_group(0)
    encodings = {group.column(i).path_in_schema: group.column(i).encodings for i in range(group.num_columns)}
    assert not [e for e in encodings["prediction"] + encodings["area"] if "DICTIONARY" in e]
    assert "RLE_DICTIONARY" in encodings["listing_id"] and "RLE_DICTIONARY" in encodings["model_version"]
