"""One fetched page into typed records: the spec's CSS selectors run on lxml's tree (parsel's CSS
dialect, compiled once per selector), each field typed by ``value_types.coerce``, and every value that
does not type kept as a field problem instead of losing its record or page.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from mlops_pack.core.value_types import ValueFormat, coerce

if TYPE_CHECKING:
    from mlops_pack.core.spec import FieldSpec, SourceSpec


def parse_page(html: str, url: str, source: SourceSpec) -> tuple[list[dict], list[dict], list[str]]:
    """Records, problems (per field, and the page's when its parsing stopped early) and the
    pagination links found in one page.

    lxml only builds a tree and runs selectors: page content is never executed or evaluated.
    """
    root, stopped = html_root(html)
    fmt = ValueFormat.of(source)
    records, problems = [], []
    for node in compiled(source.record_selector)(root):
        record: dict[str, Any] = {}
        for name, spec in source.fields.items():
            record[name], problem, raw = _extract(node, name, spec, fmt)
            if problem:
                problems.append({"url": url, "kind": "field", "field": name, "value": (raw or "")[:200],
                                 "reason": problem})
        records.append(record)
    if stopped:
        # libxml2 gives up on some documents (nesting deeper than its limit) and keeps what came before:
        # without this entry the records after that point would vanish without a trace.
        problems.append({"url": url, "kind": "page", "reason": f"HTML parsing stopped early ({stopped}); "
                         f"{len(records)} records found before that point, any after it are lost"})
    links = []
    if source.next_page_selector:
        hrefs = (_as_text(v) for v in compiled(source.next_page_selector)(root))
        links = [urljoin(url, href.strip()) for href in hrefs if href.strip()]
    return records, problems, links


def html_root(html: str):
    """(lxml root, why parsing stopped early or None): parsel's tree, and libxml2's fatal error.

    Same parser settings as ``parsel.Selector(text=html)``, built here so the parser's error log can be
    read: with ``recover=True`` a fatal error (e.g. "Excessive depth in document") silently ends the tree.
    """
    from lxml import etree
    from lxml import html as lxml_html

    parser = lxml_html.HTMLParser(recover=True, encoding="utf-8", huge_tree=True)
    body = html.strip().replace("\x00", "").encode("utf-8") or b"<html/>"
    root = etree.fromstring(body, parser=parser)
    if root is None:
        root = etree.fromstring(b"<html/>", parser=parser)
    fatal = next((e for e in parser.error_log if e.level == etree.ErrorLevels.FATAL), None)
    return root, (f"line {fatal.line}: {fatal.message}" if fatal else None)


@functools.lru_cache(maxsize=512)
def compiled(css: str):
    """A compiled lxml XPath for a CSS selector with parsel's ``::text`` / ``::attr(x)`` extensions.

    Same translation as ``parsel.Selector.css``, compiled once per selector instead of building a
    Selector object per field and record: parsing is the crawl's only CPU work, and at the politeness
    ceiling it runs between network events, so it is kept small (3-4x less CPU than node.css()).
    """
    from lxml import etree
    from parsel.csstranslator import HTMLTranslator

    return etree.XPath(HTMLTranslator().css_to_xpath(css))


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return str(value)
    from lxml import etree

    return etree.tostring(value, method="html", encoding="unicode", with_tail=False)


def _extract(node, name: str, spec: FieldSpec, fmt: ValueFormat) -> tuple[Any, str | None, str | None]:
    """(typed value, reason it did not type, raw text) of one field of one record."""
    found = compiled(spec.selector)(node)
    raw = _as_text(found[0]) if found else None
    try:
        return coerce(raw, spec.type, fmt), None, raw
    except ValueError as exc:
        # Keep the record with a null value: validation decides whether the column is still usable.
        return None, f"{name}: {exc}", raw
    except Exception as exc:  # noqa: BLE001 - one value must never lose its page (OverflowError was one)
        return None, f"{name}: cannot parse {(raw or '')[:40]!r}: {type(exc).__name__}: {exc}", raw
