"""Rows read from files and tables are typed by the spec's fields, like scraped ones."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from mlops_pack.core.columns import SourceColumnsError, conform
from mlops_pack.core.spec import ColumnSpec

FIELDS = {"id": ColumnSpec(), "price": ColumnSpec(type="number", column="Price"),
          "rooms": ColumnSpec(type="integer"), "day": ColumnSpec(type="date")}


def test_values_are_typed_renamed_and_bad_ones_become_null_with_a_reason():
    raw = pd.DataFrame({"id": ["a", "b", "c", "", "a"], "Price": ["10.5", "x", "7", "1", "11"],
                        "rooms": ["2", "2.5", None, "1", "3"], "day": ["2026-11-02", "2026-02-30", "2026-11-03",
                                                                      "2026-11-03", "2026-11-04"],
                        "extra": [1, 2, 3, 4, 5]})
    rows, problems, stats = conform(raw, FIELDS, "id", "s3://b/in/a.csv")
    assert list(rows.columns) == ["id", "price", "rooms", "day"]
    assert list(rows["id"]) == ["b", "c", "a"]  # keyless row quarantined, repeated key: the last wins
    assert rows.set_index("id").loc["a", "price"] == 11.0 and pd.isna(rows.set_index("id").loc["b", "price"])
    assert rows.set_index("id").loc["c", "day"] == dt.date(2026, 11, 3)
    assert pd.isna(rows.set_index("id").loc["b", "rooms"]) and str(rows["rooms"].dtype) == "Int64"
    reasons = sorted(p["reason"] for p in problems)
    assert any("'x' is not a number" in r for r in reasons) and any("'2.5' is not a integer" in r for r in reasons)
    assert any("2026-02-30" in r for r in reasons) and any("no value in key 'id'" in r for r in reasons)
    assert all(p["origin"] == "s3://b/in/a.csv" for p in problems)
    assert stats == {"records_kept": 3, "records_quarantined": 1, "duplicate_records": 1, "field_problems": 3}


def test_a_missing_column_is_named_with_its_origin():
    with pytest.raises(SourceColumnsError, match=r"a\.csv: columns \['Price'\] named in source.fields"):
        conform(pd.DataFrame({"id": ["a"], "rooms": [1], "day": ["2026-01-01"]}), FIELDS, "id", "a.csv")
