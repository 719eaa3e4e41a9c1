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
    at = data.find(b"\x00")
    if at < 0:
        return None
    line_start = data.rfind(b"\n", 0, at) + 1
    header = data[: data.find(b"\n") if b"\n" in data else len(data)].decode("utf-8", "replace").split(
        delimiter.decode())
    index = data[line_start:at].count(delimiter)
    column = header[index].strip().strip('"') if index < len(header) else f"#{index + 1}"
    return data.count(b"\n", 0, at) + 1, column


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
