"""Data Docs are built for a validation and copied, whole and escaped, into the pipeline's storage."""

from __future__ import annotations


def test_failed_validation_publishes_escaped_data_docs(tmp_path):
    import pandas as pd
    from airflow.sdk import ObjectStoragePath
    from mlops_pack.core.validate import publish_data_docs, validate_frame

    frame = pd.DataFrame({"city": ["Oslo", "<script>alert(1)</script>", None], "price": [1.0, 2.0, 3.0]})
    expectations = [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "city"}},
                    {"type": "expect_column_values_to_be_in_set",
                     "kwargs": {"column": "city", "value_set": ["Oslo"]}}]
    result = validate_frame(frame, expectations, "shop_suite", docs_dir=tmp_path / "gx")
    assert not result["success"]
    target = ObjectStoragePath(f"file://{tmp_path / 'store'}") / "shop" / "reports" / "datadocs" / "2026-11-03"
    index = publish_data_docs(result, target)
    assert index == str(target / "index.html")
    pages = [p for p in (tmp_path / "store").rglob("*.html")]
    assert len(pages) >= 2  # the index and the validation's page
    text = "".join(p.read_text() for p in pages)
    assert "shop_suite" in text and "<script>alert(1)</script>" not in text
    assert publish_data_docs({"docs": None}, target) is None
