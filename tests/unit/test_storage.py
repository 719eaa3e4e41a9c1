from __future__ import annotations

import pandas as pd
import pytest
from airflow.sdk import ObjectStoragePath
from mlops_pack.core.storage import (
    StorageError,
    complete_partitions,
    data_version,
    move_partition,
    partition_key,
    read_partition,
    write_partition,
)


def test_partition_key_is_storage_safe():
    assert partition_key("manual__2026-11-01T02:00:00+00:00") == "manual__2026-11-01T02_00_00_00_00"


def test_rerun_replaces_its_partition(tmp_path):
    folder = ObjectStoragePath(f"file://{tmp_path}/p/run1")
    write_partition(folder, pd.DataFrame({"a": [1, 2, 3]}))
    manifest = write_partition(folder, pd.DataFrame({"a": [1, 2]}))
    assert manifest["rows"] == 2
    assert len(read_partition(folder)) == 2
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []


def test_data_version_follows_content_only():
    a = pd.DataFrame({"x": [1, 2], "y": ["a", "b"]})
    assert data_version(a) == data_version(a.copy())
    assert data_version(a) != data_version(a.assign(x=[1, 3]))


def test_incomplete_partitions_are_invisible(tmp_path):
    root = ObjectStoragePath(f"file://{tmp_path}/validated")
    write_partition(root / "one", pd.DataFrame({"a": [1]}))
    (root / "half").mkdir(parents=True)
    (root / "half" / "data.parquet").write_bytes(b"partial")
    assert [m["folder"].rsplit("/", 1)[1] for m in complete_partitions(root)] == ["one"]
    with pytest.raises(StorageError, match="half has no manifest.json"):
        read_partition(root / "half")


def test_move_partition(tmp_path):
    src = ObjectStoragePath(f"file://{tmp_path}/raw/r1")
    write_partition(src, pd.DataFrame({"a": [1]}))
    move_partition(src, ObjectStoragePath(f"file://{tmp_path}/quarantine/r1"))
    assert list(src.iterdir()) == []
    assert len(read_partition(ObjectStoragePath(f"file://{tmp_path}/quarantine/r1"))) == 1
