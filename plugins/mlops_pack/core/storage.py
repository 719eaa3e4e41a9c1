"""The one storage layer: atomic writes, partitions, manifests (the data version) and listings.

Paths are ObjectStoragePath/UPath objects (``file://`` by default, ``s3://`` in production). This
module needs no Airflow import: it relies only on the pathlib-like methods named by
:class:`StoragePath`.

A partition is a folder named by the data it holds (``validated/2026-11-02``), never by the run that
wrote it. Inside it:

- ``data-<version>.parquet``: the rows; the file is named by its content hash, so rewriting the same
  rows rewrites the same object and a reader never sees a half-replaced file;
- ``manifest.json``: rows, schema, version, partition key, the data file's URI; written last, in one
  atomic step, so it is the partition's commit point: without it the partition is invisible;
- ``_history/``: every manifest a later write replaced, kept for audit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from mlops_pack.core.errors import MlopsError

if TYPE_CHECKING:
    import pandas as pd

MANIFEST = "manifest.json"
# Beside each raw partition (and its quarantine copy): what an ingest of any source kind refused, and why.
REJECTS_FILE = "ingest_rejects.jsonl"
HISTORY = "_history"
DATA_PREFIX = "data-"
ROW_GROUP_ROWS = 131_072


class StoragePath(Protocol):
    """What this module needs of a path: ObjectStoragePath, UPath and pathlib.Path all qualify."""

    @property
    def name(self) -> str: ...
    @property
    def parent(self) -> StoragePath: ...
    def __truediv__(self, other: str) -> StoragePath: ...
    def exists(self) -> bool: ...
    def is_file(self) -> bool: ...
    def iterdir(self) -> Iterator[StoragePath]: ...
    def mkdir(self, parents: bool = ..., exist_ok: bool = ...) -> None: ...
    def open(self, mode: str = ...) -> Any: ...
    def read_text(self) -> str: ...
    def read_bytes(self) -> bytes: ...
    def rename(self, target: Any) -> Any: ...
    def unlink(self) -> None: ...


class StorageError(MlopsError, RuntimeError):
    """A dataset could not be read or written; the message names it."""


def data_version(df: pd.DataFrame) -> str:
    """Content hash of a frame (columns, dtypes and values; not row index), used as its data version."""
    import pandas as pd

    digest = hashlib.sha256()
    digest.update(json.dumps([[c, str(t)] for c, t in df.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def digest(*parts: str) -> str:
    """A short stable hash of strings: the version of data defined by its inputs (e.g. predictions)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


@contextmanager
def atomic_writer(path: StoragePath) -> Iterator[BinaryIO]:
    """A binary file handle whose content appears at ``path`` only when the block ends without error.

    Readers see the old object or the whole new one, never a part. On a local file system the bytes
    go to a hidden temporary sibling that is renamed over ``path``. On an object store (``s3://``) a
    rename is a copy and a delete, so the bytes go straight to ``path`` as one object upload (a
    single PUT, or a multipart upload that S3 shows only once it completes); an error inside the
    block discards the upload, leaving the old object. Used by every dataset write, including the
    streaming scorer.
    """
    if not is_local(path):
        with _object_writer(path) as fh:
            yield fh
        return
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as fh:
            yield fh
        tmp.rename(path)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc}") from exc
    finally:
        if tmp.exists():
            tmp.unlink()


def is_local(path: StoragePath) -> bool:
    """True for a local file system path (pathlib, ``file://``), False for an object store."""
    return getattr(path, "protocol", "file") in ("", "file", "local")


@contextmanager
def _object_writer(path: StoragePath) -> Iterator[BinaryIO]:
    try:
        fh = path.open("wb")
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc}") from exc
    try:
        yield fh
    except BaseException:
        raw = getattr(fh, "_obj", fh)  # ObjectStoragePath wraps the fsspec file for lineage
        if hasattr(raw, "discard"):
            raw.discard()  # aborts a multipart upload; nothing was put yet otherwise
            raw.closed = True  # the buffer is gone: closing must not upload what was written
        else:
            fh.close()
        raise
    try:
        fh.close()  # the one complete object put
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc}") from exc


def write_bytes_atomic(path: StoragePath, data: bytes) -> None:
    """Write ``data`` so that readers see the old object or the whole new one, never a part."""
    with atomic_writer(path) as fh:
        fh.write(data)


def write_json(path: StoragePath, obj: Any) -> None:
    write_bytes_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str).encode())


def read_json(path: StoragePath) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def data_path(folder: StoragePath, version: str, suffix: str = ".parquet") -> StoragePath:
    """Where a partition's data of ``version`` lives: named by content, so equal data is one object."""
    return folder / f"{DATA_PREFIX}{version}{suffix}"


def is_complete(folder: StoragePath) -> bool:
    """True when ``folder`` holds a committed partition (its manifest exists)."""
    return (folder / MANIFEST).exists()


def read_manifest(folder: StoragePath) -> dict[str, Any]:
    """The manifest of the complete partition in ``folder``; StorageError names a missing one."""
    path = folder / MANIFEST
    if not path.exists():
        raise StorageError(f"partition {folder} has no {MANIFEST}: it is missing or was never completed")
    return read_json(path)


def write_manifest(folder: StoragePath, manifest: dict[str, Any]) -> dict[str, Any]:
    """Commit a partition: archive the manifest it replaces to ``_history/``, then write the new one.

    ``folder``, ``written_at`` and ``replaces`` (the version replaced, or None) are filled in. Data
    files the new manifest does not name are removed afterwards (the replaced data stays readable
    until the new manifest is in place).
    """
    path = folder / MANIFEST
    previous = read_json(path) if path.exists() else None
    manifest = {**manifest, "folder": str(folder), "written_at": _now(),
                "replaces": previous.get("version") if previous else None}
    if previous is not None:
        stamp = previous.get("written_at", _now()).replace(":", "").replace("+", "Z")
        write_json(folder / HISTORY / f"{stamp}_{previous.get('version', 'unknown')}.json", previous)
    write_json(path, manifest)
    _remove_unreferenced_data(folder)
    return manifest


def _remove_unreferenced_data(folder: StoragePath) -> None:
    # Re-read the committed manifest: a concurrent writer of the same partition may have committed
    # after us, and its data file must survive our clean-up.
    current = str(read_json(folder / MANIFEST).get("uri", "")).rsplit("/", 1)[-1]
    for item in folder.iterdir():
        if item.name.startswith(DATA_PREFIX) and item.name != current:
            item.unlink()


def partition_history(folder: StoragePath) -> list[dict[str, Any]]:
    """Manifests a partition had before its current one, oldest first."""
    history = folder / HISTORY
    if not history.exists():
        return []
    return sorted((read_json(p) for p in history.iterdir() if p.name.endswith(".json")),
                  key=lambda m: m.get("written_at", ""))


def write_partition(folder: StoragePath, df: pd.DataFrame, key: str | None = None, **extra: Any) -> dict[str, Any]:
    """Replace the partition in ``folder`` with ``df`` (atomically) and return its manifest.

    ``key`` is the partition key recorded in the manifest (default: the folder's name). Writing the
    same rows again yields the same version and the same data object.
    """
    version = data_version(df)
    buffer = io.BytesIO()
    # Row groups bound what a streaming reader (the scorer, drift) must decode at once: memory then
    # follows ROW_GROUP_ROWS, not the partition's size.
    df.to_parquet(buffer, index=False, row_group_size=ROW_GROUP_ROWS)
    target = data_path(folder, version)
    write_bytes_atomic(target, buffer.getvalue())
    return write_manifest(folder, {
        "uri": str(target), "partition": key or folder.name, "rows": int(len(df)),
        "schema": {c: str(t) for c, t in df.dtypes.items()}, "version": version, **extra,
    })


def read_partition(folder: StoragePath, columns: list[str] | None = None) -> pd.DataFrame:
    """The rows of the complete partition in ``folder`` (StorageError names a missing or corrupt one)."""
    import pandas as pd

    manifest = read_manifest(folder)
    try:
        with _data_file(folder, manifest).open("rb") as fh:
            return pd.read_parquet(fh, columns=columns)
    except (OSError, ValueError) as exc:
        raise StorageError(f"cannot read partition {folder}: {exc}") from exc


def _data_file(folder: StoragePath, manifest: dict[str, Any]) -> StoragePath:
    return folder / str(manifest["uri"]).rsplit("/", 1)[-1]


def list_partitions(area: StoragePath) -> list[dict[str, Any]]:
    """Manifests of every complete partition under ``area``, in partition-key order (oldest data first).

    Partition keys sort in time order (ISO dates, ``<date>__v<version>``), so the last one holds the
    newest data whatever the order the partitions were written in.
    """
    if not area.exists():
        return []
    manifests = [read_json(child / MANIFEST) for child in area.iterdir()
                 if not child.name.startswith((".", "_")) and (child / MANIFEST).exists()]
    return sorted(manifests, key=lambda m: (str(m.get("partition", "")), m.get("written_at", "")))


def move_partition(source: StoragePath, target: StoragePath) -> dict[str, Any]:
    """Move a complete partition from ``source`` to ``target`` (replacing it there); returns its manifest.

    Files are copied first and the manifest committed last through :func:`write_manifest`, so the
    target never shows a partial partition and keeps the history of what it replaces.
    """
    manifest = read_manifest(source)
    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.is_file() and item.name != MANIFEST:
            write_bytes_atomic(target / item.name, item.read_bytes())
    moved = write_manifest(target, {**manifest, "uri": str(target / _data_file(source, manifest).name)})
    (source / MANIFEST).unlink()
    for item in source.iterdir():
        if item.is_file():
            item.unlink()
    return moved
