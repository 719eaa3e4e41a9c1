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


def asset_urls(html: str) -> list[str]:
    """The URLs a page's scripts, stylesheets and images load."""
    import re

    tags = re.findall(r"<(?:script|link|img)\b[^>]*>", html, flags=re.I)
    return [m for tag in tags for m in re.findall(r"\b(?:src|href)=[\"']([^\"']+)", tag)
            if "stylesheet" in tag or not tag.lower().startswith("<link")]


def test_data_docs_pages_load_only_vendored_assets(tmp_path):
    """Every page GX builds, as the plugin serves it: no script, stylesheet or image from the internet,
    and every asset it names is a vendored file (the browser test fetches them through the route)."""
    import pandas as pd
    from mlops_pack.core.validate import validate_frame
    from mlops_pack.ui.datadocs import STATIC, offline, vendored

    frame = pd.DataFrame({"city": ["Oslo", None], "price": [1.0, 2.0]})
    result = validate_frame(frame, [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "city"}}],
                            "shop_suite", docs_dir=tmp_path / "gx")
    pages = list((tmp_path / "gx").rglob("*.html"))
    assert len(pages) >= 2 and result["docs"]
    for page in pages:
        before, after = page.read_text(), offline(page.read_text(), "/base/mlops/static/datadocs")
        assert any(u.startswith("https://") for u in asset_urls(before))  # what GX writes: CDNs
        external = [u for u in asset_urls(after) if u.startswith(("http:", "https:", "//"))]
        assert external == [], (page.name, external)
        served = [u.removeprefix("/base/mlops/static/datadocs/") for u in asset_urls(after) if u.startswith("/base/")]
        assert "jquery/dist/jquery.min.js" in served and "bootstrap/dist/css/bootstrap.min.css" in served
        assert set(served) <= set(vendored()), set(served) - set(vendored())
    assert all((STATIC / path).is_file() for path in vendored())  # the package ships each one
