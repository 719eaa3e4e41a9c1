"""core/change.py: one round of conditional GETs against a real server on 127.0.0.1; the hash decides."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from mlops_pack.core.change import changed_url
from mlops_pack.core.fetcher import FetchFailed, Refused
from mlops_pack.core.spec import SourceSpec

from tests.support.hostile_site import HostileSite


@pytest.fixture
def site():
    site = HostileSite().start()
    yield site
    site.stop()


def source(site: HostileSite) -> SourceSpec:
    return SourceSpec.model_validate({
        "start_urls": [f"{site.base}/etag"], "allowed_hosts": [f"127.0.0.1:{site.port}"],
        "record_selector": "div.item", "key": "id", "fields": {"id": {"selector": "::attr(data-id)"}},
        "max_retries": 0, "timeout_seconds": 2})


def check(site: HostileSite, urls: list[str], known: dict):
    return asyncio.run(changed_url(source(site), [f"{site.base}{u}" for u in urls], known))


def body_hash(site: HostileSite, path: str) -> str:
    import urllib.request

    with urllib.request.urlopen(f"{site.base}{path}") as response:
        return hashlib.sha256(response.read()).hexdigest()


def test_an_unknown_url_is_changed_and_its_validators_are_returned(site):
    changed = check(site, ["/etag"], {})
    assert changed == {"url": f"{site.base}/etag", "etag": '"v1"', "last_modified": None,
                       "sha256": body_hash(site, "/etag")}


def test_a_304_is_unchanged_and_a_new_version_is_changed(site):
    known = {f"{site.base}/etag": {"etag": '"v1"', "last_modified": "Wed, 21 Oct 2015 07:28:00 GMT",
                                   "sha256": "old"}}
    assert check(site, ["/etag"], known) is None
    [headers] = [h for p, h in site.hits if p == "/etag"]
    assert headers["If-None-Match"] == '"v1"'
    assert headers["If-Modified-Since"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    site.version = 2
    assert check(site, ["/etag"], known)["etag"] == '"v2"'


def test_a_200_with_the_same_body_is_not_a_change(site):
    # /page/3 ignores validators and always answers 200: only the body hash can tell
    url = f"{site.base}/page/3"
    assert check(site, ["/page/3"], {url: {"sha256": body_hash(site, "/page/3")}}) is None
    assert check(site, ["/page/3"], {url: {"sha256": "something else"}})["url"] == url


def test_the_first_changed_url_is_reported_and_the_rest_not_fetched(site):
    known = {f"{site.base}/etag": {"etag": '"v1"'}}
    changed = check(site, ["/etag", "/page/2", "/page/3"], known)
    assert changed["url"] == f"{site.base}/page/2"
    assert "/page/3" not in site.paths()


def test_an_error_status_fails_loudly(site):
    with pytest.raises(FetchFailed, match=r"/missing: HTTP 404"):
        check(site, ["/missing"], {})


def test_robots_txt_and_content_types_are_obeyed(site):
    with pytest.raises(Refused, match="robots.txt disallows /private/secret") as err:
        check(site, ["/private/secret"], {})
    assert err.value.kind == "robots" and "/private/secret" not in site.paths()
    with pytest.raises(FetchFailed, match="content type 'application/json'"):
        check(site, ["/json"], {})
