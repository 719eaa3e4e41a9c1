"""Page URLs listed by sitemap.xml files (sitemaps.org protocol), following sitemap indexes.

Parsed with parsel's XML mode (lxml without entity resolution, so no XXE); gzip sitemaps are
inflated with a size cap so a compression bomb stops at ``max_bytes``.
"""

from __future__ import annotations

import zlib


def inflate(body: bytes, max_bytes: int) -> bytes:
    """``body`` gunzipped when it is gzip, refusing to grow past ``max_bytes``."""
    if body[:2] != b"\x1f\x8b":
        return body
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    data = inflater.decompress(body, max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"gzip sitemap inflates past {max_bytes} bytes")
    return data


def parse_sitemap(body: bytes, max_bytes: int) -> tuple[list[str], list[str]]:
    """(page URLs, nested sitemap URLs) listed in one sitemap or sitemap index."""
    from parsel import Selector

    doc = Selector(body=inflate(body, max_bytes), type="xml", huge_tree=False)
    doc.remove_namespaces()
    pages = [u.strip() for u in doc.xpath("/urlset/url/loc/text()").getall() if u.strip()]
    nested = [u.strip() for u in doc.xpath("/sitemapindex/sitemap/loc/text()").getall() if u.strip()]
    return pages, nested
