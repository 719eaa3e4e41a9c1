from __future__ import annotations

import dataclasses

import pytest
from mlops_pack.core.scrape import ScrapeError, crawl
from mlops_pack.core.spec import load_spec

from tests.support.specs import write_spec


@pytest.fixture
def source(tmp_path, demo_site):
    url, _ = demo_site
    return load_spec(write_spec(tmp_path, url)).source


def test_crawl_follows_pagination_and_types_fields(source, demo_site):
    _, site = demo_site
    result = crawl(source)
    assert result.stats["pages_fetched"] == site.state.pages
    assert len(result.records) == site.state.records_per_day
    first = result.records[0]
    assert first["listing_id"] == "d001-00000"
    assert isinstance(first["area_m2"], float) and isinstance(first["rooms"], int)
    assert result.quarantined == []


def test_crawl_keeps_garbage_values_as_null_and_quarantines_the_reason(source, demo_site):
    _, site = demo_site
    site.set_state(dataclasses.replace(site.state, corrupt=True))
    try:
        result = crawl(source)
    finally:
        site.set_state(dataclasses.replace(site.state, corrupt=False))
    assert all(r["area_m2"] is None for r in result.records)
    reasons = {q["reason"] for q in result.quarantined}
    assert any("area_m2: 'n/a' is not a number" in r for r in reasons)
    # truncated pages lose records but never sink the run
    assert len(result.records) < site.state.records_per_day


def test_crawl_refuses_hosts_outside_the_allow_list(source):
    source = source.model_copy(update={"start_urls": ["http://example.invalid/listings"]})
    with pytest.raises(ScrapeError, match="no page fetched.*not in source.allowed_hosts"):
        crawl(source)


def test_crawl_names_an_unreachable_site(source):
    from tests.support.ports import free_port

    port = free_port()
    source = source.model_copy(update={"start_urls": [f"http://127.0.0.1:{port}/listings"],
                                       "allowed_hosts": [f"127.0.0.1:{port}"]})
    source = source.model_copy(update={"max_retries": 0})
    with pytest.raises(ScrapeError, match=f"127.0.0.1:{port}/robots.txt is unreachable"):
        crawl(source)
