"""The one spelling of a URL that a crawl checks and requests: RFC 3986's syntax-based normalisation.

robots.txt rules, the allow list and the page table match text, while the HTTP client (yarl) resolves
``.`` and ``..`` segments before it sends a request: ``/a/../private/x`` passed a ``Disallow:
/private/`` check and the server received ``/private/x``. So every URL is normalised once, when the
crawl first sees it (section 6.2.2): scheme and host in lower case, percent-encodings of unreserved
characters decoded (``%2e`` is ``.``) and the others in upper case, dot segments removed (section
5.2.4), fragment dropped. What is checked is then exactly what is sent.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
PERCENT = re.compile("%([0-9A-Fa-f]{2})")


def normalized_url(url: str) -> str:
    """``url`` in its RFC 3986 normal form, without fragment."""
    parts = urlsplit(url.strip())
    path = remove_dot_segments(_percent_normal(parts.path))
    if parts.netloc and not path:
        path = "/"
    userinfo, at, host = parts.netloc.rpartition("@")  # only the host is case-insensitive
    return urlunsplit((parts.scheme.lower(), f"{userinfo}{at}{host.lower()}", path, _percent_normal(parts.query), ""))


def _percent_normal(text: str) -> str:
    def one(match: re.Match) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in UNRESERVED else f"%{match.group(1).upper()}"

    return PERCENT.sub(one, text)


def remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4's result, segment by segment: ``.`` goes, ``..`` removes the segment before
    it (never the root), and a path ending in either keeps its trailing slash."""
    segments = path.split("/")
    output: list[str] = []
    for segment in segments:
        if segment == "..":
            if len(output) > 1 or (output and output[0] != ""):
                output.pop()
        elif segment != ".":
            output.append(segment)
    if segments[-1] in (".", ".."):
        output.append("")
    return "/".join(output)
