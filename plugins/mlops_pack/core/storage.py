"""Partitions in object storage: atomic writes, manifests (the data version) and listings.

Paths are ObjectStoragePath/UPath objects (``file://`` by default, ``s3://`` in production); this
module only uses their pathlib-like methods, so it needs no Airflow import. A partition is a folder
keyed by the Airflow run; its ``manifest.json`` is written last, so a partition without one is
incomplete and readers skip it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

MANIFEST = "manifest.json"
DATA = "data.parquet"


class StorageError(RuntimeError):
    """A dataset could not be read or written; the message names it."""


def partition_key(run_id: str) -> str:
    """A storage-safe folder name for an Airflow run id (manual__2026-11-01T02:00:00+00:00 ...)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("_")


def data_version(df: pd.DataFrame) -> str:
    """Content hash of a frame (columns, dtypes and values; not row index), used as its data version."""
    import pandas as pd

    digest = hashlib.sha256()
    digest.update(json.dumps([[c, str(t)] for c, t in df.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def write_bytes_atomic(path, data: bytes) -> None:
    """Write ``data`` so that readers see the old object or the whole new one, never a part."""
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as fh:
            fh.write(data)
        tmp.rename(path)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc}") from exc
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path, obj: Any) -> None:
    write_bytes_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str).encode())


def read_json(path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc


def write_partition(folder, df: pd.DataFrame, **extra: Any) -> dict[str, Any]:
    """Replace the partition in ``folder`` with ``df`` and return its manifest (written last)."""
    import io

    manifest_path = folder / MANIFEST
    if manifest_path.exists():
        manifest_path.unlink()  # a rerun invalidates the old partition before replacing it
    buffer = io.BytesIO()
    df.to_parquet(buffer, index=False)
    write_bytes_atomic(folder / DATA, buffer.getvalue())
    manifest = {
        "uri": str(folder / DATA),
        "folder": str(folder),
        "rows": int(len(df)),
        "schema": {c: str(t) for c, t in df.dtypes.items()},
        "version": data_version(df),
        "written_at": dt.datetime.now(dt.UTC).isoformat(),
        **extra,
    }
    write_json(manifest_path, manifest)
    return manifest


def read_partition(folder, columns: list[str] | None = None) -> pd.DataFrame:
    import pandas as pd

    manifest_path = folder / MANIFEST
    if not manifest_path.exists():
        raise StorageError(f"partition {folder} has no {MANIFEST}: it is missing or was never completed")
    try:
        with (folder / DATA).open("rb") as fh:
            return pd.read_parquet(fh, columns=columns)
    except (OSError, ValueError) as exc:
        raise StorageError(f"cannot read partition {folder}: {exc}") from exc


def complete_partitions(folder) -> list[dict[str, Any]]:
    """Manifests of every complete partition under ``folder``, oldest first."""
    if not folder.exists():
        return []
    manifests = [read_json(child / MANIFEST) for child in folder.iterdir() if (child / MANIFEST).exists()]
    return sorted(manifests, key=lambda m: m["written_at"])


def move_partition(source, target) -> None:
    """Move every file of a partition (manifest last) from ``source`` to ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    files = sorted((p for p in source.iterdir() if p.is_file()), key=lambda p: p.name == MANIFEST)
    for item in files:
        write_bytes_atomic(target / item.name, item.read_bytes())
    for item in reversed(files):
        item.unlink()
