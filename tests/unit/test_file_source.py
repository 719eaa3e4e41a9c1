"""Which files a file source reads: new or changed ones only, named ones only under its URL."""

from __future__ import annotations

import datetime as dt

import pytest
from mlops_pack.core.file_source import (
    FileInfo,
    FileSourceError,
    changed_files,
    file_format,
    matches,
    remember,
    requested_file,
)

BASE = "s3://bucket/in/"


def test_a_first_run_reads_every_file_and_a_second_run_reads_none():
    listing = [FileInfo(BASE + "b.csv", 10, 2.0), FileInfo(BASE + "a.csv", 10, 1.0)]
    first = changed_files(listing, None, max_files=10)
    assert [f.url for f in first] == [BASE + "a.csv", BASE + "b.csv"]  # oldest first
    assert changed_files(listing, remember(None, first), max_files=10) == []


def test_a_changed_size_or_mtime_or_etag_is_read_again_and_an_equal_etag_is_not():
    state = remember(None, [FileInfo(BASE + "a.csv", 10, 1.0), FileInfo(BASE + "e.csv", 5, 1.0, etag="x")])
    assert changed_files([FileInfo(BASE + "a.csv", 11, 1.0)], state, 10)
    assert changed_files([FileInfo(BASE + "a.csv", 10, 2.0)], state, 10)
    assert changed_files([FileInfo(BASE + "e.csv", 5, 1.0, etag="y")], state, 10)
    # A store that rewrote the object with the same bytes keeps the ETag: not changed.
    assert not changed_files([FileInfo(BASE + "e.csv", 5, 9.0, etag="x")], state, 10)


def test_max_files_leaves_the_rest_for_the_next_run():
    listing = [FileInfo(f"{BASE}{i}.csv", 1, float(i)) for i in range(5)]
    first = changed_files(listing, None, max_files=2)
    second = changed_files(listing, remember(None, first), max_files=10)
    assert [f.url for f in first + second] == [f.url for f in listing]


def test_fingerprints_from_local_and_s3_stat():
    local = FileInfo.from_stat("file:///d/a.csv", {"size": 3, "mtime": 5.5, "type": "file"})
    s3 = FileInfo.from_stat(BASE + "a.csv", {"size": 3, "ETag": '"abc"',
                                             "LastModified": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)})
    assert (local.etag, local.mtime) == (None, 5.5)
    assert s3.etag == "abc" and s3.mtime == dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()


def test_formats_come_from_the_suffix_unless_declared():
    assert [file_format(f"{BASE}x{s}", None) for s in (".csv", ".CSV.gz", ".parquet", ".pq", ".jsonl", ".ndjson")] \
        == ["csv", "csv", "parquet", "parquet", "jsonl", "jsonl"]
    assert file_format(BASE + "x.dat", "csv") == "csv"
    with pytest.raises(FileSourceError, match=r"x\.dat.*source\.format"):
        file_format(BASE + "x.dat", None)


def test_patterns_match_below_the_url_only():
    assert matches(BASE + "a.csv", BASE, "*.csv")
    assert not matches(BASE + "sub/a.csv", BASE, "*.csv")
    assert matches(BASE + "sub/a.csv", BASE, "*/*.csv")
    assert matches(BASE + "a.csv", BASE, "**/*.csv") and matches(BASE + "x/y/a.csv", BASE, "**/*.csv")
    assert not matches("s3://bucket/other/a.csv", BASE, "*.csv")
    assert not matches(BASE + "../secret.csv", BASE, "*")


def test_a_message_may_name_only_files_of_the_source():
    assert requested_file("day1.csv", BASE, "*.csv") == BASE + "day1.csv"
    assert requested_file(BASE + "day1.csv", BASE, "*.csv") == BASE + "day1.csv"
    for bad in ("s3://bucket/private/keys.csv", "../private/keys.csv", "day1.parquet", "file:///etc/passwd"):
        with pytest.raises(FileSourceError, match="refused"):
            requested_file(bad, BASE, "*.csv")


def test_a_nul_byte_is_found_with_its_line_and_header_column():
    from mlops_pack.core.file_source import nul_position

    assert nul_position(b"id,city\na,x\nb\x00 2,y\n", b",") == (3, "id")
    assert nul_position(b'"id";"city"\na;x\x00\n', b";") == (2, "city")
    assert nul_position(b"id,city\na,x\n", b",") is None


def test_a_refused_file_is_remembered_with_its_reason_until_it_changes():
    bad = FileInfo("file:///in/b.csv", 10, 1.0)
    state = remember(None, [FileInfo("file:///in/a.csv", 5, 1.0)], {bad.url: (bad, "NUL byte")})
    assert state["files"][bad.url]["refused"] == "NUL byte"
    assert changed_files([bad], state, 10) == []
    assert changed_files([FileInfo(bad.url, 11, 2.0)], state, 10) == [FileInfo(bad.url, 11, 2.0)]
