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
