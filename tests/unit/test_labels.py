"""Label partitions: one row per key, rejects and contradictions listed, re-deliveries unchanged."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from mlops_pack.core.labels import (
    LABEL,
    LABELLED_AT,
    contradictions_with,
    delivery_rows,
    label_file_partition,
    unlabelled,
    with_arrival,
)
from mlops_pack.core.storage import write_partition


def frame(*rows):
    return pd.DataFrame(rows, columns=["id", LABEL])


def test_a_delivery_keeps_one_row_per_key_and_lists_what_it_could_not_use():
    rows, rejects, contradictions = delivery_rows(
        frame(("b", 2.0), ("a", 1.0), ("a", 1), (None, 5.0), ("c", None), ("  ", 3.0)), "id", "f.csv")
    assert rows.to_dict("list") == {"id": ["a", "b"], LABEL: [1.0, 2.0]}  # 1 and 1.0 are the same label
    assert contradictions == []
    assert sorted(r["reason"] for r in rejects) == ["no label", "no value in key 'id'", "no value in key 'id'"]


def test_a_key_given_two_labels_in_one_delivery_keeps_the_last_and_records_the_other():
    rows, _, contradictions = delivery_rows(frame(("a", "yes"), ("a", "no")), "id", "f.csv")
    assert rows[LABEL].tolist() == ["no"]
    assert contradictions == [{"key": "a", "label": "no", "contradicts": "yes", "where": "twice in f.csv",
                               "kept": "label read last"}]


def test_labels_contradicting_another_partition_are_listed_and_equal_ones_are_not():
    rows, _, _ = delivery_rows(frame(("a", 1.0), ("b", 2.0), ("c", 3.0)), "id", "new")
    other = frame(("a", 1.0), ("b", 9.0), ("z", 4.0))
    assert contradictions_with(rows, other, "id", "2026-11-01") == [
        {"key": "b", "label": 2.0, "contradicts": 9.0, "where": "label partition 2026-11-01",
         "kept": "both; the join takes the latest arrival"}]


def test_a_redelivery_keeps_its_first_arrival_so_the_partition_is_unchanged(tmp_path):
    rows, _, _ = delivery_rows(frame(("a", 1.0), ("b", 2.0)), "id", "f.csv")
    first = dt.datetime(2026, 11, 2, 8, tzinfo=dt.UTC)
    stamped, when = with_arrival(rows, None, now=first)
    manifest = write_partition(tmp_path / "labels" / "f", stamped, first_arrived_at=when)
    again, when_again = with_arrival(rows, manifest, now=first + dt.timedelta(days=3))
    assert when_again == when == first.isoformat()
    assert write_partition(tmp_path / "labels" / "f", again, first_arrived_at=when_again)["version"] == \
        manifest["version"]
    assert stamped[LABELLED_AT].iloc[0] == pd.Timestamp(first)


def test_label_partitions_are_named_by_their_file_or_validated_partition():
    assert label_file_partition("s3://b/labels/2026-11-03.csv.gz") == "2026-11-03"
    assert label_file_partition("file:///l/batch 7.parquet") == "batch_7"
    assert unlabelled(["d3", "d1", "d2"], ["d2"]) == ["d1", "d3"]


def test_sql_label_rows_are_partitioned_by_their_day_and_merged_with_what_is_stored():
    from mlops_pack.core.labels import label_partitions, merged_delivery

    values = pd.Series([dt.date(2026, 11, 1), pd.Timestamp("2026-11-02T23:59:00Z"), None, "week 45", " "])
    assert label_partitions(values).tolist() == ["2026-11-01", "2026-11-02", None, "week_45", None]
    stored = pd.DataFrame({"id": ["a", "b"], "label": [1.0, 2.0]})
    new = pd.DataFrame({"id": ["a", "b", "c"], "label": [1.0, 3.0, 4.0]})
    rows, _, contradictions = delivery_rows(merged_delivery(stored, new, "id"), "id", "stored, then query")
    assert rows.set_index("id")["label"].to_dict() == {"a": 1.0, "b": 3.0, "c": 4.0}
    assert [(c["key"], c["label"], c["contradicts"]) for c in contradictions] == [("b", 3.0, 2.0)]
    assert merged_delivery(None, new, "id").equals(new)


def test_label_events_name_their_partition_and_a_malformed_message_is_named():
    import json

    import pytest
    from mlops_pack.core.inbox import MessageError
    from mlops_pack.core.labels import label_deliveries

    rest = {"partition": "2026-11-03", "labels": [{"listing_id": "a", "price": 1.0}]}
    assert label_deliveries(rest) == [{"partition": "2026-11-03", "rows": rest["labels"], "origin": "asset event"}]
    redis = {"from_trigger": True, "payload": {"type": "message", "channel": "lab", "data": json.dumps(rest)}}
    assert label_deliveries(redis)[0]["origin"] == "Redis message on channel 'lab'"
    for bad, said in (({**rest, "partition": None}, "names no 'partition'"),
                      ({"partition": "p", "labels": []}, "has no 'labels' list"),
                      ({"from_trigger": True, "payload": {"type": "message", "channel": "lab", "data": "[1]"}},
                       "Redis message on channel 'lab' is JSON but not an object")):
        with pytest.raises(MessageError, match=said):
            label_deliveries(bad)
