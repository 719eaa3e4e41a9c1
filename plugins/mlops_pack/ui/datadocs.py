"""Data Docs that work offline: the scripts, styles, fonts and logo GX pages load from public CDNs are
served by the plugin instead.

Great Expectations 1.24 writes ``<script src="https://code.jquery.com/...">`` and the like into every
page (``render/view/templates/*.j2``): offline the pages are unstyled, the logo is broken and the
validations list, which jQuery and bootstrap-table fill from data inlined in the page, stays empty.
The same files, at the versions GX names, are vendored in ``static/datadocs/`` (from npm, pinned by
its ``package-lock.json``; the logo from the installed great_expectations package; ``make
vendor-datadocs`` refreshes them). When a stored Data Docs page is served, :func:`offline` points
each known CDN URL at ``<ui base>/mlops/static/datadocs/<file>`` and drops any other external
script, stylesheet or image, so nothing leaves the machine. Pages are rewritten when served, not
when stored, so pages stored before keep working and a move of the UI's base path is followed.
"""

from __future__ import annotations

import re
from pathlib import Path

STATIC = Path(__file__).parent / "static" / "datadocs"

# The CDN URLs of GX 1.24.1's templates -> the same file under STATIC (npm package/path).
ASSETS = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap/dist/css/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap/dist/js/bootstrap.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/dist/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.js/dist/umd/popper.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css":
        "bootstrap-table/dist/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table/dist/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker/dist/css/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker/dist/js/bootstrap-datepicker.min.js",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "@forevolve/bootstrap-dark/dist/css/bootstrap-prefers-dark.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "@fortawesome/fontawesome-free/css/all.min.css",
    "https://cdn.jsdelivr.net/npm/vega@5": "vega/build/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite/build/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed/build/vega-embed.min.js",
}
# Files a vendored stylesheet loads itself (Font Awesome's webfonts; browsers that take woff2).
FONTS = [f"@fortawesome/fontawesome-free/webfonts/{name}.woff2"
         for name in ("fa-brands-400", "fa-regular-400", "fa-solid-900", "fa-v4compatibility")]
# The navbar logo comes from GX's web-assets bucket, with a query naming the data context.
GX_IMAGES = re.compile(r"https://great-expectations-web-assets\.s3\.us-east-2\.amazonaws\.com/"
                       r"([A-Za-z0-9_.-]+\.(?:png|svg|gif|ico))(?:\?[^\"'<>\s]*)?")
LOGOS = ["great_expectations/images/logo-long.png"]
# What an external script, stylesheet or image looks like in a tag, once the known ones are mapped.
EXTERNAL = re.compile(r"<(script|link|img)\b[^>]*?\b(?:src|href)=[\"']https?://[^>]*>(?:\s*</script>)?", re.I)


def vendored() -> list[str]:
    """Every file under STATIC a Data Docs page may load (what ``make vendor-datadocs`` copies)."""
    return sorted({*ASSETS.values(), *FONTS, *LOGOS})


def offline(html: str, base: str) -> str:
    """``html`` with its CDN scripts, stylesheets and images served from ``base`` (the static route's
    path, such as ``/mlops/static/datadocs``) and any other external one removed."""
    for url, path in ASSETS.items():
        html = html.replace(f'"{url}"', f'"{base}/{path}"')
    html = GX_IMAGES.sub(lambda m: f"{base}/great_expectations/images/{m.group(1)}", html)
    return EXTERNAL.sub(lambda m: "" if m.group(1).lower() != "link" or "stylesheet" in m.group(0).lower()
                        else m.group(0), html)


def asset(path: str) -> Path | None:
    """The vendored file at ``path`` (relative to STATIC), or None for anything not vendored."""
    return STATIC / path if path in vendored() and (STATIC / path).is_file() else None
