"""Files are read streaming (issue 25, case 4): in chunks of rows and blocks of bytes, with the same
rows, problems and refusals as a whole read, and a size limit that names the file.

The reader under test is the one the ingest task uses (FileSourceHook.chunks on a file:// folder);
chunks are made small here so that every file spans many of them."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest
from mlops_pack.core.columns import capped, keep_last_rows, type_frame
from mlops_pack.core.file_source import FileInfo, FileSourceError, TextGuard, nul_position
from mlops_pack.core.spec.sources import ColumnSpec
from mlops_pack.hooks.table_source import FileSourceHook

FIELDS = {"id": ColumnSpec(type="string"), "price": ColumnSpec(type="number"), "rooms": ColumnSpec(type="integer")}


def table(rows: int) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"k{i % (rows // 2)}" for i in range(rows)],  # every key twice: the last wins
                         "price": [("n/a" if i % 97 == 0 else f"{i}.5") for i in range(rows)],
                         "rooms": [str(i % 7) for i in range(rows)], "city": ["Berlin"] * rows})


def info(path) -> FileInfo:
    return FileInfo(f"file://{path}", path.stat().st_size)


def typed_in_chunks(path, fmt: str, chunk_rows: int, max_bytes: int = 10**9):
    hook = FileSourceHook(f"file://{path.parent}/")
    parts, problems = [], []
    chunks = list(hook.chunks(info(path), fmt, max_bytes=max_bytes, chunk_rows=chunk_rows))
    for chunk in chunks:
        rows, found, _ = type_frame(chunk, FIELDS, str(path))
        parts.append(rows)
        problems.extend(found)
    return len(chunks), pd.concat(parts, ignore_index=True), capped(problems)


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz", "t.parquet", "t.jsonl"])
def test_a_file_read_in_chunks_gives_the_rows_and_problems_of_a_whole_read(tmp_path, name):
    rows = table(2_500)
    path = tmp_path / name
    if name.startswith("t.csv"):
        rows.to_csv(path, index=False, compression="gzip" if name.endswith(".gz") else None)
    elif name.endswith(".parquet"):
        rows.to_parquet(path, index=False, row_group_size=700)
    else:
        rows.to_json(path, orient="records", lines=True)
    fmt = name.split(".")[1]
    count, chunked, chunk_problems = typed_in_chunks(path, fmt, chunk_rows=300)
    whole_count, whole, whole_problems = typed_in_chunks(path, fmt, chunk_rows=10**6)
    assert count == 9 and whole_count == 1  # really read in chunks
    pd.testing.assert_frame_equal(chunked, whole)
    assert chunk_problems == whole_problems and len(whole_problems) == 26  # the 'n/a' prices
    kept, record_problems, stats = keep_last_rows(chunked, "id", name)
    assert stats["records_kept"] == 1_250 and kept.equals(keep_last_rows(whole, "id", name)[0])


def test_a_nul_far_past_the_first_chunk_refuses_the_file_naming_line_and_column(tmp_path):
    text = table(3_000).to_csv(index=False)
    lines = text.split("\n")
    lines[2_500] = lines[2_500].replace(",", ",\0", 1)  # line 2501 of the file, in the price column
    path = tmp_path / "late_nul.csv"
    path.write_text("\n".join(lines))
    with pytest.raises(FileSourceError, match=r"late_nul.csv: line 2501, column 'price' holds a NUL byte"):
        typed_in_chunks(path, "csv", chunk_rows=100)
    assert nul_position(path.read_bytes(), b",") == (2501, "price")


def test_the_nul_guard_finds_the_same_line_and_column_whatever_the_blocks():
    data = b"id;city;price\n" + b"".join(b"k%d;Berlin;%d\n" % (i, i) for i in range(200)) + b"k;Ber\0lin;1\n"
    for size in (1, 3, 7, 64, len(data)):
        guard = TextGuard("x.csv", b";", limit=10**6)
        with pytest.raises(FileSourceError):
            for start in range(0, len(data), size):
                guard.feed(data[start:start + size])
        assert guard.nul == (202, "city"), size


def test_a_file_over_the_limit_or_inflating_past_it_is_refused_naming_it(tmp_path):
    big = tmp_path / "big.csv"
    table(2_000).to_csv(big, index=False)
    with pytest.raises(FileSourceError, match=r"big.csv: \d+ bytes is over source.max_file_bytes=1000: refused"):
        typed_in_chunks(big, "csv", chunk_rows=100, max_bytes=1_000)
    bomb = tmp_path / "bomb.csv.gz"
    bomb.write_bytes(gzip.compress(b"id,price,rooms\n" + b"k,1,1\n" * 300_000))  # 1.8 MB inflated, 2 KB stored
    assert bomb.stat().st_size < 100_000
    with pytest.raises(FileSourceError, match=r"bomb.csv.gz: more than 1000000 bytes of text \(source.max_file_bytes"):
        typed_in_chunks(bomb, "csv", chunk_rows=100, max_bytes=1_000_000)


def test_a_date_column_with_mixed_utc_offsets_types_value_by_value(tmp_path):
    # issue 25, case 7: it failed with a bare AttributeError naming no file or column
    path = tmp_path / "offsets.jsonl"
    path.write_text('{"d": "2026-11-01T10:00:00+01:00"}\n{"d": "2026-11-01T23:30:00-05:00"}\n{"d": "soon"}\n')
    [chunk] = FileSourceHook(f"file://{tmp_path}/").chunks(info(path), "jsonl", max_bytes=10**6)
    typed, problems, count = type_frame(chunk, {"d": ColumnSpec(type="date")}, str(path))
    assert typed["d"].iloc[:2].notna().all() and typed["d"].isna().iloc[2]
    assert count == 1 and problems[0]["field"] == "d" and problems[0]["origin"] == str(path)
