"""core/storage.py: atomic partitions named by their data, manifests as commit points, history."""

from __future__ import annotations

import pandas as pd
import pytest
from airflow.sdk import ObjectStoragePath
from mlops_pack.core.storage import (
    REJECTS_FILE,
    StorageError,
    atomic_writer,
    data_version,
    is_complete,
    list_partitions,
    move_partition,
    partition_history,
    read_manifest,
    read_partition,
    write_partition,
)


def path(tmp_path, rel: str) -> ObjectStoragePath:
    return ObjectStoragePath(f"file://{tmp_path}/{rel}")


def test_rewriting_the_same_rows_keeps_version_and_object_and_records_history(tmp_path):
    folder = path(tmp_path, "validated/2026-11-02")
    first = write_partition(folder, pd.DataFrame({"a": [1, 2, 3]}))
    again = write_partition(folder, pd.DataFrame({"a": [1, 2, 3]}))
    assert (first["version"], first["uri"], first["rows"]) == (again["version"], again["uri"], again["rows"])
    assert again["replaces"] == first["version"] and again["partition"] == "2026-11-02"
    assert [p.name for p in folder.iterdir() if p.name.startswith("data-")] == [first["uri"].rsplit("/", 1)[1]]
    assert [m["version"] for m in partition_history(folder)] == [first["version"]]


def test_replacing_with_other_rows_removes_the_old_data_and_keeps_its_manifest(tmp_path):
    folder = path(tmp_path, "raw/k")
    old = write_partition(folder, pd.DataFrame({"a": [1, 2, 3]}))
    new = write_partition(folder, pd.DataFrame({"a": [1, 2]}))
    assert new["rows"] == 2 and len(read_partition(folder)) == 2
    assert [p.name for p in folder.iterdir() if p.name.startswith("data-")] == [new["uri"].rsplit("/", 1)[1]]
    assert partition_history(folder)[-1]["version"] == old["version"]
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []


def test_data_version_follows_content_only():
    a = pd.DataFrame({"x": [1, 2], "y": ["a", "b"]})
    assert data_version(a) == data_version(a.copy())
    assert data_version(a) != data_version(a.assign(x=[1, 3]))


def test_incomplete_partitions_are_invisible_and_named_when_read(tmp_path):
    root = path(tmp_path, "validated")
    write_partition(root / "2026-11-01", pd.DataFrame({"a": [1]}))
    (root / "half").mkdir(parents=True)
    (root / "half" / "data-x.parquet").write_bytes(b"partial")
    assert [m["partition"] for m in list_partitions(root)] == ["2026-11-01"]
    assert not is_complete(root / "half")
    with pytest.raises(StorageError, match="half has no manifest.json"):
        read_partition(root / "half")


def test_partitions_list_in_key_order_not_write_order(tmp_path):
    root = path(tmp_path, "validated")
    for key in ("2026-11-03", "2026-11-01", "2026-11-02"):
        write_partition(root / key, pd.DataFrame({"a": [1]}))
    assert [m["partition"] for m in list_partitions(root)] == ["2026-11-01", "2026-11-02", "2026-11-03"]


def test_a_failed_write_leaves_the_old_object(tmp_path):
    target = path(tmp_path, "f.bin")
    with atomic_writer(target) as fh:
        fh.write(b"old")
    with pytest.raises(RuntimeError), atomic_writer(target) as fh:
        fh.write(b"half")
        raise RuntimeError("writer died")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.bin"]


def test_move_partition_commits_at_the_target_and_empties_the_source(tmp_path):
    src, dst = path(tmp_path, "raw/k"), path(tmp_path, "quarantine/k")
    write_partition(src, pd.DataFrame({"a": [1]}))
    (src / REJECTS_FILE).write_text("{}")
    moved = move_partition(src, dst)
    assert [p.name for p in src.iterdir() if p.is_file()] == []
    assert len(read_partition(dst)) == 1 and (dst / REJECTS_FILE).exists()
    assert read_manifest(dst)["uri"] == moved["uri"] and moved["uri"].startswith(str(dst))
