"""Property: one table of hostile and ambiguous text values, written as CSV, Parquet, JSON lines, an HTML
page and a PostgreSQL table, reads back as the same typed rows and the same rejects from every one.

Each format goes through the reader the ingest task uses (FileSourceHook.read on a file:// folder, the
scraper's page parser and record collection, SqlSourceHook.read through an Airflow connection), then
the one typing and de-duplication rule (core/value_types.py).
"""

from __future__ import annotations

import html
import os
import uuid

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlops_pack.core.columns import conform
from mlops_pack.core.spec import ColumnSpec, SourceSpec
from mlops_pack.core.value_types import ValueFormat, stored_frame

pytestmark = pytest.mark.integration
KINDS = {"id": "string", "amount": "number", "count": "integer", "day": "date", "note": "string"}
FORMATS = [ValueFormat(), ValueFormat(decimal=",", thousands=".", date_formats=("%d/%m/%Y",)),
           ValueFormat(date_formats=("%m/%d/%Y", "%d.%m.%Y"))]
HOSTILE_NUMBERS = ["1e3", "1E-05", "0x1F", "1_000", "1,234", "1.234,5", "0,5", "10-20", "\u22125", " 12 ", "12abc",
                   "€ 245,300", "72.5 m²", "inf", "NaN", "9" * 400, "9223372036854775808", "2.0", "2.5", "-0", "3 200",
                   "", " ", "true", "<b>7</b>", "007"]
HOSTILE_DATES = ["03/12/2026", "14/11/2026", "12/31/2026", "2026-12-03", "2026-02-30", "2026-12-03T23:30:00+02:00",
                 "03.12.2026", "20261203", "3 Dec 2026", "", "2026-13-01", "0001-01-01", "NaT"]
TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF, exclude_categories=("Cs", "Cc", "Zl", "Zp")),
               max_size=12)
ROW = st.fixed_dictionaries({
    "id": st.sampled_from(["a", "b", "c", "d", "", " ", "03/12/2026", "1e3"]),
    "amount": st.one_of(st.sampled_from(HOSTILE_NUMBERS), TEXT),
    "count": st.one_of(st.sampled_from(HOSTILE_NUMBERS), st.integers(-10**20, 10**20).map(str)),
    "day": st.one_of(st.sampled_from(HOSTILE_DATES), TEXT),
    "note": TEXT,
})


def read_files(folder, table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    from mlops_pack.core.file_source import FileInfo
    from mlops_pack.hooks.table_source import FileSourceHook

    table.to_csv(folder / "t.csv", index=False)
    table.to_parquet(folder / "t.parquet", index=False)
    table.to_json(folder / "t.jsonl", orient="records", lines=True, force_ascii=False)
    hook = FileSourceHook(f"file://{folder}/")
    frames = {}
    for name, fmt in (("t.csv", "csv"), ("t.parquet", "parquet"), ("t.jsonl", "jsonl")):
        path = folder / name
        frames[fmt] = hook.read(FileInfo(f"file://{path}", path.stat().st_size), fmt, max_bytes=10**9)
    return frames


def read_sql(conn_id: str, table: pd.DataFrame) -> pd.DataFrame:
    import psycopg2
    from mlops_pack.hooks.table_source import SqlSourceHook

    name = f"hostile_{uuid.uuid4().hex[:8]}"
    dsn = os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"]
    with psycopg2.connect(dsn) as conn, conn.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {name} (seq int, {', '.join(f'{c} text' for c in KINDS)})")
        cursor.executemany(f"INSERT INTO {name} VALUES (%s{', %s' * len(KINDS)})",
                           [(i, *row) for i, row in enumerate(table.itertuples(index=False))])
    try:
        return SqlSourceHook(conn_id).read(f"SELECT * FROM {name} ORDER BY seq", []).drop(columns="seq")
    finally:
        with psycopg2.connect(dsn) as conn, conn.cursor() as cursor:
            cursor.execute(f"DROP TABLE {name}")


def scrape(table: pd.DataFrame, fmt: ValueFormat) -> tuple[pd.DataFrame, list[dict]]:
    from mlops_pack.core.page_parse import parse_page
    from mlops_pack.core.scrape import Page, collect_records

    rows = "".join("<tr class='r'>" + "".join(f"<td class='{c}'>{html.escape(v)}</td>" for c, v in row.items())
                   + "</tr>" for row in table.to_dict(orient="records"))
    source = SourceSpec.model_validate({
        "start_urls": ["http://127.0.0.1:9/t"], "allowed_hosts": ["127.0.0.1:9"], "record_selector": "tr.r",
        "key": "id", "fields": {c: {"selector": f"td.{c}::text", "type": k} for c, k in KINDS.items()},
        "decimal_separator": fmt.decimal, "thousands_separator": fmt.thousands, "date_formats": list(fmt.date_formats)})
    url = "http://127.0.0.1:9/t"
    records, problems, _ = parse_page(f"<html><body><table>{rows}</table></body></html>", url, source)
    quarantine: list[dict] = []
    kept = collect_records([Page(url, 0, outcome="fetched", records=records, problems=problems)], "id", quarantine)
    return stored_frame(kept["kept"], KINDS), quarantine


def comparable(rows: pd.DataFrame, problems: list[dict]) -> tuple[pd.DataFrame, list[tuple]]:
    rows = rows.sort_values("id", ignore_index=True)
    listed = sorted((p["kind"], p.get("field", ""), p.get("value", ""), p["reason"],
                     str(p.get("record", {}).get("id")) if p["kind"] == "record" else "") for p in problems)
    return rows, listed


@pytest.fixture(scope="module")
def sql_conn(source_db):
    dsn, uri = source_db
    os.environ["AIRFLOW_CONN_TYPING_PG"] = uri
    yield "typing_pg"
    os.environ.pop("AIRFLOW_CONN_TYPING_PG", None)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(ROW, min_size=1, max_size=12), fmt=st.sampled_from(FORMATS))
def test_every_format_types_the_same_table_the_same_way(rows, fmt, tmp_path_factory, sql_conn):
    table = pd.DataFrame(rows, columns=list(KINDS))
    fields = {c: ColumnSpec(type=k) for c, k in KINDS.items()}
    results = {kind: comparable(*conform(frame, fields, "id", "origin", fmt)[:2])
               for kind, frame in {**read_files(tmp_path_factory.mktemp("t"), table),
                                   "sql": read_sql(sql_conn, table)}.items()}
    results["html"] = comparable(*scrape(table, fmt))
    expected_rows, expected_problems = results.pop("csv")
    assert [str(t) for t in expected_rows.dtypes] == ["object", "float64", "Int64", "object", "object"]
    for kind, (typed, problems) in results.items():
        pd.testing.assert_frame_equal(typed, expected_rows, obj=f"{kind} rows")
        assert problems == expected_problems, kind
