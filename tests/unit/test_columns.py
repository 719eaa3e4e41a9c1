"""Rows read from files and tables are typed by the spec's fields, by the rules of every source kind."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from mlops_pack.core.columns import SourceColumnsError, conform
from mlops_pack.core.spec import ColumnSpec
from mlops_pack.core.value_types import ValueFormat

FIELDS = {"id": ColumnSpec(), "price": ColumnSpec(type="number", column="Price"),
          "rooms": ColumnSpec(type="integer"), "day": ColumnSpec(type="date")}


def test_values_are_typed_renamed_and_bad_ones_become_null_with_a_reason():
    raw = pd.DataFrame({"id": ["a", "b", "c", "", "a", "c"], "Price": ["10.5", "x", "7", "1", "11", "7"],
                        "rooms": ["2", "2.5", None, "1", "3", None],
                        "day": ["2026-11-02", "2026-02-30", "2026-11-03", "2026-11-03", "2026-11-04", "2026-11-03"],
                        "extra": [1, 2, 3, 4, 5, 6]})
    rows, problems, stats = conform(raw, FIELDS, "id", "s3://b/in/a.csv")
    assert list(rows.columns) == ["id", "price", "rooms", "day"]
    assert list(rows["id"]) == ["b", "a", "c"]  # keyless row quarantined; a repeated key: the last read wins
    assert rows.set_index("id").loc["a", "price"] == 11.0 and pd.isna(rows.set_index("id").loc["b", "price"])
    assert rows.set_index("id").loc["c", "day"] == dt.date(2026, 11, 3)
    assert pd.isna(rows.set_index("id").loc["b", "rooms"]) and str(rows["rooms"].dtype) == "Int64"
    reasons = sorted(p["reason"] for p in problems)
    assert "price: 'x' is not a number" in reasons and "rooms: '2.5' is not an integer" in reasons
    assert any("2026-02-30" in r for r in reasons) and "record without key 'id'" in reasons
    [superseded] = [p for p in problems if "the last one read is kept" in p["reason"]]
    assert superseded["record"]["price"] == 10.5  # the earlier, different row of key 'a' is the reject
    assert all(p["origin"] == "s3://b/in/a.csv" for p in problems)
    # the identical repeat of 'c' is counted, not rejected
    assert stats == {"records_kept": 3, "records_quarantined": 2, "duplicate_records": 2, "field_problems": 3}


def test_non_iso_dates_are_refused_unless_the_spec_names_their_layout():
    raw = pd.DataFrame({"id": ["a", "b"], "Price": ["1", "2"], "rooms": ["1", "1"], "day": ["03/12/2026", "14/11/2026"]})
    rows, problems, _ = conform(raw, FIELDS, "id", "a.csv")
    assert rows["day"].isna().all()
    assert [p["value"] for p in problems] == ["03/12/2026", "14/11/2026"]
    assert all("not an ISO date" in p["reason"] and "not guessed" in p["reason"] for p in problems)
    rows, problems, _ = conform(raw, FIELDS, "id", "a.csv", ValueFormat(date_formats=("%d/%m/%Y",)))
    assert list(rows["day"]) == [dt.date(2026, 12, 3), dt.date(2026, 11, 14)] and problems == []


def test_a_missing_column_is_named_with_its_origin():
    with pytest.raises(SourceColumnsError, match=r"a\.csv: columns \['Price'\] named in source.fields"):
        conform(pd.DataFrame({"id": ["a"], "rooms": [1], "day": ["2026-01-01"]}), FIELDS, "id", "a.csv")


def test_a_typed_column_of_the_wrong_kind_is_a_schema_mismatch_naming_file_and_column():
    from mlops_pack.core.columns import schema_mismatch, type_frame

    assert schema_mismatch(pd.Series([True, False]), "number") == "holds booleans"
    assert schema_mismatch(pd.Series([{"a": 1}, None, {"b": 2}]), "string") == "holds nested or binary values (dict)"
    assert schema_mismatch(pd.Series([b"\x00", b"x"]), "string") == "holds nested or binary values (bytes)"
    assert schema_mismatch(pd.Series(["a", {"a": 1}]), "string") is None  # mixed JSON values: judged one by one
    assert schema_mismatch(pd.Series([True, False]), "string") is None
    frame = pd.DataFrame({"id": ["a"], "Price": [True], "rooms": [1], "day": ["2026-11-02"]})
    with pytest.raises(SourceColumnsError, match=r"f.parquet: column 'Price' holds booleans, not number"):
        type_frame(frame, FIELDS, "f.parquet")


def test_files_typed_one_by_one_keep_what_concatenating_them_first_would_convert():
    from mlops_pack.core.columns import keep_last_rows, type_frame

    a = pd.DataFrame({"id": ["a"], "Price": [10.5], "rooms": ["1"], "day": ["2026-11-02"]})
    b = pd.DataFrame({"id": ["a", "b"], "Price": ["11", "7"], "rooms": [2, 3], "day": ["2026-11-02", "2026-11-03"]})
    typed = [type_frame(f, FIELDS, name)[0] for f, name in ((a, "a.parquet"), (b, "b.csv"))]
    rows, problems, stats = keep_last_rows(pd.concat(typed, ignore_index=True), "id", "in/*")
    assert rows["price"].tolist() == [11.0, 7.0] and stats["duplicate_records"] == 1
    assert problems[0]["reason"].startswith("duplicate key id='a'")
