"""One spelling per URL (core/url_form.py): RFC 3986's normalisation, as the crawl checks and requests."""

from __future__ import annotations

import pytest
from mlops_pack.core.url_form import normalized_url, remove_dot_segments

BASE = "http://a/b/c/d;p?q"


@pytest.mark.parametrize(("reference", "target"), [  # RFC 3986 section 5.4's examples with dot segments
    ("./g", "http://a/b/c/g"), ("g/", "http://a/b/c/g/"), (".", "http://a/b/c/"), ("./", "http://a/b/c/"),
    ("..", "http://a/b/"), ("../", "http://a/b/"), ("../g", "http://a/b/g"), ("../..", "http://a/"),
    ("../../g", "http://a/g"), ("../../../g", "http://a/g"), ("../../../../g", "http://a/g"),
    ("/./g", "http://a/g"), ("/../g", "http://a/g"), ("g.", "http://a/b/c/g."), (".g", "http://a/b/c/.g"),
    ("g..", "http://a/b/c/g.."), ("..g", "http://a/b/c/..g"), ("./../g", "http://a/b/g"),
    ("./g/.", "http://a/b/c/g/"), ("g/./h", "http://a/b/c/g/h"), ("g/../h", "http://a/b/c/h"),
])
def test_the_rfc_examples_resolve_to_their_targets(reference, target):
    from urllib.parse import urljoin

    # urljoin merges the paths; the dot segments are this module's to remove
    assert normalized_url(urljoin(BASE, reference)) == target


def test_spellings_of_one_resource_become_one_url():
    spellings = ["HTTP://Example.COM/private/x", "http://example.com/./private/x",
                 "http://example.com/a/../private/x", "http://example.com/%2e%2e/private/x",
                 "http://example.com/pub/%2E%2E/private/x", "http://example.com/private/x#top",
                 "http://example.com/%70rivate/x"]
    assert {normalized_url(s) for s in spellings} == {"http://example.com/private/x"}


def test_reserved_percent_encodings_stay_encoded_and_userinfo_keeps_its_case():
    assert normalized_url("http://h/a%2fb?q=%7e%2f") == "http://h/a%2Fb?q=~%2F"
    assert normalized_url("http://User:PW@Host/") == "http://User:PW@host/"
    assert remove_dot_segments("mid/content=5/../6") == "mid/6"
