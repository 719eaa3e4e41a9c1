"""File sources: which files under the spec's URL a run reads, and in which format.

Plain functions, no Airflow import. A file is read when it is new or changed since the last run
that ingested it: its fingerprint (ETag where the store gives one, else size and modification
time) differs from the one kept in ``state/file_state.json``. A file named by a queue message or an
upstream event is read whatever its fingerprint (an explicit request), but only if it lies under
the spec's URL and matches its pattern: a message cannot make the pack read anything else.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from mlops_pack.core.errors import MlopsError

FORMATS_BY_SUFFIX = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
                     ".ndjson": "jsonl", ".json": "jsonl"}


class FileSourceError(MlopsError, ValueError):
    """A file cannot be read as the spec says; the message names the file."""


@dataclass(frozen=True)
class FileInfo:
    """One listed file: its full URL and what identifies its content."""

    url: str
    size: int
    mtime: float | None = None
    etag: str | None = None

    @classmethod
    def from_stat(cls, url: str, info: dict[str, Any]) -> FileInfo:
        """From an fsspec ``info``/``stat`` dict (local: mtime; S3: ETag and LastModified)."""
        etag = info.get("ETag") or info.get("etag")
        mtime = info.get("mtime")
        if mtime is None and info.get("LastModified") is not None:
            stamp = info["LastModified"]
            mtime = stamp.timestamp() if hasattr(stamp, "timestamp") else None
        return cls(url=url, size=int(info.get("size") or 0), mtime=float(mtime) if mtime is not None else None,
                   etag=str(etag).strip('"') if etag else None)

    @property
    def fingerprint(self) -> dict[str, Any]:
        return {"etag": self.etag, "size": self.size, "mtime": self.mtime}


def is_changed(info: FileInfo, known: dict[str, Any] | None) -> bool:
    """Is ``info`` new or different from the fingerprint ``known`` from the last read?

    The ETag decides when both have one (a store that rewrites an object with equal bytes keeps
    it); otherwise size and modification time do.
    """
    if not known:
        return True
    if info.etag and known.get("etag"):
        return info.etag != known["etag"]
    return info.size != known.get("size") or info.mtime != known.get("mtime")


def changed_files(listing: list[FileInfo], state: dict[str, Any] | None, max_files: int) -> list[FileInfo]:
    """The files of ``listing`` to read this run: new or changed ones, oldest first (then by URL), at
    most ``max_files`` (the rest stay new for the next run)."""
    known = (state or {}).get("files", {})
    todo = [f for f in listing if is_changed(f, known.get(f.url))]
    todo.sort(key=lambda f: (f.mtime if f.mtime is not None else 0.0, f.url))
    return todo[:max_files]


def remember(state: dict[str, Any] | None, read: list[FileInfo],
             refused: dict[str, tuple[FileInfo, str]] | None = None) -> dict[str, Any]:
    """The file state after ``read`` were ingested and ``refused`` (url -> (file, reason)) were not: a
    refused file is not read again until it changes, so it cannot stop the files beside it run after
    run (the others keep their fingerprints)."""
    files = dict((state or {}).get("files", {}))
    files.update({f.url: f.fingerprint for f in read})
    files.update({url: {**info.fingerprint, "refused": reason} for url, (info, reason) in (refused or {}).items()})
    return {"files": files}


def nul_position(data: bytes, delimiter: bytes) -> tuple[int, str] | None:
    """(line number, header column) of the first NUL byte in delimited text, or None. A NUL ends a
    value in pandas' C parser without a word (``b\\0 2`` became ``b``, and that row then replaced the
    good ``b`` row), so a file holding one is refused."""
    guard = TextGuard("", delimiter, limit=len(data) + 1)
    try:
        guard.feed(data)
    except FileSourceError:
        return guard.nul
    return None


class TextGuard:
    """Watches the bytes of one delimited text file as they stream by, block after block: refuses
    (FileSourceError naming the file) the first NUL byte, with its line and header column, and text
    past ``limit`` bytes (a gzip bomb stops there). Holds the header and the current line's start
    only, so memory is flat in the file's size."""

    def __init__(self, url: str, delimiter: bytes | None, limit: int):
        self.url, self.delimiter, self.limit = url, delimiter, limit
        self.seen = 0  # bytes fed so far
        self.lines = 0  # newlines fed so far
        self.header: bytes | None = None
        self.head = b""  # the header line while it is incomplete
        self.line_tail = b""  # the current line so far: its delimiters name a NUL's column
        self.nul: tuple[int, str] | None = None

    def feed(self, block: bytes) -> None:
        self.seen += len(block)
        if self.seen > self.limit:
            raise FileSourceError(f"{self.url}: more than {self.limit} bytes of text (source.max_file_bytes): "
                                  "refused, nothing of it read")
        if self.header is None:
            self.head += block
            if b"\n" in self.head:
                self.header = self.head[: self.head.index(b"\n")]
        at = block.find(b"\x00") if self.delimiter is not None else -1
        if at >= 0:
            self._refuse_nul(block, at)
        newline = block.rfind(b"\n")
        self.lines += block.count(b"\n")
        self.line_tail = (self.line_tail + block if newline < 0 else block[newline + 1:])[-1_000_000:]

    def _refuse_nul(self, block: bytes, at: int) -> None:
        before = block[:at]
        newline = before.rfind(b"\n")
        line = (self.line_tail + before) if newline < 0 else before[newline + 1:]
        header = (self.header if self.header is not None else self.head[: len(self.head) - len(block) + at])
        names = header.decode("utf-8", "replace").split(self.delimiter.decode())
        index = line.count(self.delimiter)
        column = names[index].strip().strip('"') if index < len(names) else f"#{index + 1}"
        self.nul = (self.lines + before.count(b"\n") + 1, column)
        raise FileSourceError(f"{self.url}: line {self.nul[0]}, column {self.nul[1]!r} holds a NUL byte: refused "
                              "(a NUL silently cuts the value and key it is in)")


def file_format(url: str, declared: str | None) -> str:
    """``declared``, else the format the suffix says; FileSourceError naming the file otherwise."""
    if declared:
        return declared
    name = url.rsplit("/", 1)[-1].lower()
    for suffix, kind in FORMATS_BY_SUFFIX.items():
        if name.endswith(suffix) or name.endswith(suffix + ".gz"):
            return kind
    raise FileSourceError(f"{url}: cannot tell its format from the name; set source.format to csv, parquet or "
                          "jsonl")


def matches(url: str, base: str, pattern: str) -> bool:
    """Does ``url`` lie under ``base`` (a folder URL ending in '/') and match the glob ``pattern``?"""
    if not url.startswith(base):
        return False
    relative = url[len(base):]
    if not relative or ".." in relative.split("/"):
        return False
    if pattern.startswith("**/") and fnmatch.fnmatchcase(relative, pattern[3:]):
        return True  # '**/' also matches files directly under base
    return fnmatch.fnmatchcase(relative, pattern) and (pattern.count("/") == relative.count("/")
                                                      or "**" in pattern)


def requested_file(name: str, base: str, pattern: str) -> str:
    """The URL of a file a message names (a full URL, or a path relative to ``base``); FileSourceError
    when it is outside ``base`` or does not match ``pattern``."""
    url = name if "://" in name else base + name.lstrip("/")
    if not matches(url, base, pattern):
        raise FileSourceError(f"the message names {name!r}, which is not a file under source.url {base!r} "
                              f"matching source.pattern {pattern!r}: refused")
    return url
