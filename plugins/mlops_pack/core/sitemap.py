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


def parse_sitemap(body: bytes, max_bytes: int) -> tuple[list[str], list[str], str | None]:
    """(page URLs, nested sitemap URLs, problem) of one sitemap or sitemap index.

    ``problem`` says why the XML was not read to its end (an entity bomb trips libxml2's amplification
    limit, a syntax error stops it): the entries before that point are kept, and the caller records the
    problem, because with lxml's recovery the entries after it would otherwise vanish silently.
    """
    from lxml import etree
    from parsel import Selector
    from parsel.selector import SafeXMLParser

    parser = SafeXMLParser(recover=True, remove_comments=True, huge_tree=False, no_network=True)
    root = etree.fromstring(inflate(body, max_bytes).strip() or b"<empty/>", parser=parser)
    if root is None:
        return [], [], _problem(parser) or "not an XML document"
    doc = Selector(root=root, type="xml")
    doc.remove_namespaces()
    pages = [u.strip() for u in doc.xpath("/urlset/url/loc/text()").getall() if u.strip()]
    nested = [u.strip() for u in doc.xpath("/sitemapindex/sitemap/loc/text()").getall() if u.strip()]
    return pages, nested, _problem(parser)


def _problem(parser) -> str | None:
    from lxml import etree

    error = next((e for e in parser.error_log if e.level >= etree.ErrorLevels.ERROR), None)
    if error is None:
        return None
    return f"XML error at line {error.line}: {error.message.strip().rstrip('.')}; the entries after it are lost"
