"""Alert text made safe for each channel it travels on: values from pages, files and reasons are data.

An alert's subject and body carry values the pack did not write (a scraped city, a gate reason naming
a slice, an exception message). On a Slack-style webhook, ``<!channel>`` pings everyone and
``<http://evil.example|Approve champion v3 here>`` is a link whose text lies about its target; Slack's
documented escaping (``&`` ``<`` ``>`` as entities) turns both back into the text they are. Every
channel also gets the text without control and bidirectional-override characters (a right-to-left
override can make ``exe.pdf`` read as ``fdp.exe``), and a subject on one line: a newline in an e-mail
header is refused by the mail library, which would lose the alert. E-mail bodies are plain text, so
nothing in them is markup.
"""

from __future__ import annotations

import re

# C0/C1 controls except tab and newline, and the Unicode bidi embeddings, overrides and isolates.
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
MAX_SUBJECT = 200
MAX_BODY = 10_000


def plain(text: str, limit: int = MAX_BODY) -> str:
    """``text`` without control or bidi-override characters, cut to ``limit`` characters."""
    cleaned = UNSAFE.sub("", str(text).replace("\r\n", "\n").replace("\r", "\n"))
    return cleaned if len(cleaned) <= limit else cleaned[:limit - 1] + "…"


def subject_line(text: str) -> str:
    """One line for an e-mail subject or a chat title."""
    return plain(" ".join(str(text).split()), MAX_SUBJECT)


def slack(text: str) -> str:
    """``text`` as Slack mrkdwn shows it literally: no mention, no link markup, no entity of its own."""
    return plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
