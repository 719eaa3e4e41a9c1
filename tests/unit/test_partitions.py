"""core/partitions.py: partition identity from the data, clean training windows, what to score."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from mlops_pack.core.partitions import (
    HoldoutLeak,
    PartitionError,
    check_disjoint,
    combined_key,
    dedupe_latest,
    partitions_to_score,
    prediction_key,
    run_data_key,
    safe_key,
    split_by_key,
    window_key,
)

NOV2 = dt.datetime(2026, 11, 2, 2, 0, tzinfo=dt.UTC)


def key(**kw):
    base = {"requested": None, "run_partition_key": None, "event_keys": [], "logical_date": None,
            "date_format": "%Y-%m-%d"}
    return run_data_key(**{**base, **kw})


def test_run_data_key_prefers_explicit_then_airflow_partition_then_events_then_logical_date():
    assert key(requested="2026-11-05", run_partition_key="p", event_keys=["e"], logical_date=NOV2) == "2026-11-05"
    assert key(run_partition_key="eu|2026-11-02", event_keys=["e"], logical_date=NOV2) == "eu_2026-11-02"
    assert key(event_keys=["2026-11-04", "2026-11-04"], logical_date=NOV2) == "2026-11-04"
    assert key(logical_date=NOV2) == "2026-11-02"
    assert key(logical_date=NOV2, date_format="%Y-%m-%dT%H") == "2026-11-02T02"
    assert key() is None  # a REST-triggered run with no logical date has no data identity


def test_events_naming_several_partitions_are_refused():
    with pytest.raises(PartitionError, match="name 2 partitions"):
        key(event_keys=["a", "b"])


def test_safe_key_refuses_empty_and_overlong_keys():
    assert safe_key(dt.date(2026, 11, 2)) == "2026-11-02"
    assert safe_key("../../etc/passwd") == "etc_passwd"
    with pytest.raises(PartitionError):
        safe_key("///")
    with pytest.raises(PartitionError, match="longer than"):
        safe_key("x" * 500)


def test_split_by_column_names_each_row_by_its_value_and_sets_keyless_rows_apart():
    frame = pd.DataFrame({"id": [1, 2, 3, 4], "day": ["2026-11-02", "2026-11-01", None, "2026-11-02"]})
    groups, keyless = split_by_key(frame, "day", run_key="ignored")
    assert {k: list(v["id"]) for k, v in groups.items()} == {"2026-11-01": [2], "2026-11-02": [1, 4]}
    assert list(keyless["id"]) == [3]


def test_split_without_column_uses_the_run_key_and_needs_one():
    frame = pd.DataFrame({"id": [1, 2]})
    groups, _ = split_by_key(frame, None, "2026-11-02")
    assert list(groups) == ["2026-11-02"]
    with pytest.raises(PartitionError, match="no data identity.*partition"):
        split_by_key(frame, None, None)


def test_dedupe_keeps_the_newest_partitions_row():
    frame = pd.DataFrame({"id": [1, 2, 1], "price": [10, 20, 11]})
    assert dedupe_latest(frame, "id").set_index("id")["price"].to_dict() == {1: 11, 2: 20}


def test_overlapping_holdout_is_refused_with_the_overlap_named():
    train, holdout = pd.DataFrame({"id": ["a", "b", "c"]}), pd.DataFrame({"id": ["c", "d"]})
    with pytest.raises(HoldoutLeak, match=r"1 of 2 holdout rows share 'id'.*e\.g\. c"):
        check_disjoint(train, holdout, "id")
    check_disjoint(train, pd.DataFrame({"id": ["d"]}), "id")


def test_derived_keys_are_stable_and_say_what_they_hold():
    assert prediction_key("2026-11-02", "3") == "2026-11-02__v3"
    assert combined_key(["b", "a", "a"]) == combined_key(["a", "b"])
    assert combined_key(["2026-11-02__v1"]) == "2026-11-02__v1"
    assert combined_key(["x", "y"]).startswith("x_to_y_2p_")
    assert window_key(["2026-11-02", "2026-11-01"], "abcd") == "2026-11-01_to_2026-11-02__abcd"


def test_partitions_to_score():
    validated = ["2026-11-01", "2026-11-02", "2026-11-03"]
    pick = dict(validated=validated, scored_sources={"2026-11-02", "2026-11-03"})
    assert partitions_to_score(requested=["2026-11-02"], event_keys=["2026-11-03"], **pick) == ["2026-11-02"]
    assert partitions_to_score(requested=[], event_keys=["2026-11-03"], **pick) == ["2026-11-03"]
    # a champion change: the newest, plus one that arrived before any champion could score it
    assert partitions_to_score(requested=[], event_keys=[], **pick) == ["2026-11-01", "2026-11-03"]
    with pytest.raises(PartitionError, match="no validated partition"):
        partitions_to_score(requested=["2030-01-01"], event_keys=[], **pick)
