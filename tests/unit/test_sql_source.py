"""The incremental query of a SQL source and the watermark it keeps."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from mlops_pack.core.sql_source import encode, incremental_query, new_rows


def test_the_query_is_wrapped_filtered_inclusively_and_ordered_on_the_watermark():
    sql, params = incremental_query("SELECT * FROM t", "updated_at", "2026-11-02T00:00:00", 100)
    assert sql == ('SELECT * FROM (SELECT * FROM t) AS src WHERE src."updated_at" >= %s '
                   'ORDER BY src."updated_at" LIMIT 100')
    assert params == ["2026-11-02T00:00:00"]
    assert incremental_query("SELECT 1", "updated_at", None, 5) == (
        'SELECT * FROM (SELECT 1) AS src ORDER BY src."updated_at" LIMIT 5', [])
    assert incremental_query("SELECT 1", None, None, 5) == ("SELECT * FROM (SELECT 1) AS src LIMIT 5", [])
    with pytest.raises(ValueError, match="plain column name"):
        incremental_query("SELECT 1", 'x"; drop table t; --', None, 5)


def frame(rows):
    return pd.DataFrame(rows, columns=["id", "ts"])


def test_rows_seen_at_the_last_watermark_are_dropped_and_late_rows_at_it_are_kept():
    first, state = new_rows(frame([("a", 1), ("b", 2), ("c", 2)]), watermark_column="ts", key_column="id", state=None)
    assert list(first["id"]) == ["a", "b", "c"] and state == {"watermark": 2, "keys_at_watermark": ["b", "c"]}
    # The next read is inclusive (ts >= 2): b and c come back, d was committed late with ts 2, e is newer.
    again, state2 = new_rows(frame([("b", 2), ("c", 2), ("d", 2), ("e", 3)]), watermark_column="ts",
                             key_column="id", state=state)
    assert list(again["id"]) == ["d", "e"] and state2 == {"watermark": 3, "keys_at_watermark": ["e"]}


def test_an_unchanged_table_gives_nothing_new_and_keeps_the_state():
    state = {"watermark": 2, "keys_at_watermark": ["b", "c"]}
    nothing, kept = new_rows(frame([("b", 2), ("c", 2)]), watermark_column="ts", key_column="id", state=state)
    assert nothing.empty and kept == state


def test_late_rows_at_the_same_watermark_add_to_the_keys_seen():
    state = {"watermark": 2, "keys_at_watermark": ["b"]}
    got, kept = new_rows(frame([("b", 2), ("d", 2)]), watermark_column="ts", key_column="id", state=state)
    assert list(got["id"]) == ["d"] and kept == {"watermark": 2, "keys_at_watermark": ["b", "d"]}


def test_timestamps_are_kept_as_iso_text():
    stamp = dt.datetime(2026, 11, 2, 10, 30, tzinfo=dt.UTC)
    _, state = new_rows(frame([("a", pd.Timestamp(stamp))]), watermark_column="ts", key_column="id", state=None)
    assert state["watermark"] == "2026-11-02T10:30:00+00:00" == encode(stamp)
    again, _ = new_rows(frame([("a", pd.Timestamp(stamp))]), watermark_column="ts", key_column="id", state=state)
    assert again.empty


def test_without_a_watermark_every_row_is_new():
    got, state = new_rows(frame([("a", 1)]), watermark_column=None, key_column="id", state={"x": 1})
    assert len(got) == 1 and state == {"x": 1}
