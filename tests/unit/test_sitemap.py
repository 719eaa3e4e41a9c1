"""core/sitemap.py: page and nested-sitemap URLs from sitemap XML, gzip inflated under a size cap."""

from __future__ import annotations

import gzip

import pytest
from mlops_pack.core.sitemap import inflate, parse_sitemap

URLSET = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
          b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
          b"<url><loc> https://shop.example/a?x=1&amp;y=2 </loc><lastmod>2026-01-01</lastmod></url>"
          b"<url><loc>https://shop.example/b</loc></url>"
          b"<url><loc>   </loc></url>"
          b"</urlset>")
INDEX = (b'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
         b"<sitemap><loc>https://shop.example/sitemap-1.xml.gz</loc></sitemap>"
         b"<sitemap><loc>https://shop.example/sitemap-2.xml</loc></sitemap></sitemapindex>")


def test_a_urlset_lists_its_pages_stripped_and_unescaped():
    pages, nested, problem = parse_sitemap(URLSET, 1_000_000)
    assert pages == ["https://shop.example/a?x=1&y=2", "https://shop.example/b"]
    assert nested == [] and problem is None


def test_an_index_lists_nested_sitemaps_not_pages():
    assert parse_sitemap(INDEX, 1_000_000) == ([], ["https://shop.example/sitemap-1.xml.gz",
                                                    "https://shop.example/sitemap-2.xml"], None)


def test_a_sitemap_without_the_namespace_is_read_too():
    assert parse_sitemap(b"<urlset><url><loc>https://shop.example/c</loc></url></urlset>", 10_000) == (
        ["https://shop.example/c"], [], None)


def test_a_gzip_sitemap_is_inflated():
    assert parse_sitemap(gzip.compress(URLSET), 1_000_000)[0][1] == "https://shop.example/b"


def test_inflate_passes_plain_bytes_through_and_caps_a_compression_bomb():
    assert inflate(URLSET, 10) == URLSET  # not gzip: untouched, whatever its size
    assert inflate(gzip.compress(b"x" * 1000), 1000) == b"x" * 1000
    with pytest.raises(ValueError, match="inflates past 1000 bytes"):
        inflate(gzip.compress(b"x" * 1001), 1000)
    with pytest.raises(ValueError, match="inflates past 100000 bytes"):
        inflate(gzip.compress(b"\0" * 50_000_000), 100_000)


def test_external_entities_are_not_resolved(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    xxe = (f'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY x SYSTEM "file://{secret}">]>'
           f"<urlset><url><loc>https://shop.example/&x;</loc></url></urlset>").encode()
    pages, _, _ = parse_sitemap(xxe, 100_000)
    assert not any("TOPSECRET" in p for p in pages)


def test_an_entity_bomb_keeps_the_entries_before_it_and_says_the_rest_are_lost():
    from tests.support.hostile_site import entity_bomb_sitemap

    pages, _, problem = parse_sitemap(entity_bomb_sitemap("https://shop.example").encode(), 1_000_000)
    assert pages[0] == "https://shop.example/page/3" and "https://shop.example/slow?n=lost" not in pages
    assert "amplification" in problem and "the entries after it are lost" in problem


def test_broken_xml_is_a_problem_not_silence():
    pages, nested, problem = parse_sitemap(b"<urlset><url><loc>https://shop.example/a</loc></url><url>", 10_000)
    assert pages == ["https://shop.example/a"] and "XML error at line 1" in problem
