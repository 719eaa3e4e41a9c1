"""Each source kind ingests, validates and publishes through the real ingest DAG (dag.test): files on
``file://`` (CSV, Parquet, JSON lines) and on ``s3://`` (a moto server, through the Amazon provider's
connection), and a query on the local PostgreSQL, incremental on a watermark."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from tests.sources.conftest import aws_connection, boto_client, require_s3fs, restore_env, set_env
from tests.sources.specs import COLUMNS, day_rows, table_spec
from tests.support.env import HOME
from tests.support.specs import write_dag_file

pytestmark = pytest.mark.integration
DATA = HOME / "data"


def run_ingest(spec_path, name: str, **conf):
    from mlops_pack.dag_factory import build_dags

    write_dag_file(spec_path, name)
    run = build_dags(spec_path)[f"{name}__ingest"].test(run_conf=conf or None)
    return run, task_states(f"{name}__ingest", run.run_id)


def task_states(dag_id: str, run_id: str) -> dict[str, str]:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        tis = session.scalars(select(TaskInstance).where(TaskInstance.dag_id == dag_id,
                                                         TaskInstance.run_id == run_id))
        return {ti.task_id: str(ti.state) for ti in tis}


def validated_events(name: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                               .where(AssetModel.name == f"{name}.validated").order_by(AssetEvent.id)).scalars()
        return [dict(e.extra) for e in rows]


def manifests(name: str, area: str) -> dict[str, dict]:
    folder = DATA / name / area
    return {m.parent.name: json.loads(m.read_text()) for m in sorted(folder.glob("*/manifest.json"))}


def read_validated(name: str, key: str) -> pd.DataFrame:
    return pd.read_parquet(manifests(name, "validated")[key]["uri"].removeprefix("file://"))


def test_files_in_three_formats_are_ingested_once_and_a_changed_file_again(airflow_db, tmp_path):
    name, inbox = "src_local", tmp_path / "in"
    inbox.mkdir()
    pd.DataFrame(day_rows(1)).to_csv(inbox / "day1.csv", index=False)
    pd.DataFrame(day_rows(2)).to_parquet(inbox / "day2.parquet", index=False)
    pd.DataFrame(day_rows(3)).to_json(inbox / "day3.jsonl", orient="records", lines=True)
    (inbox / "notes.txt").write_text("not data")
    spec = table_spec(tmp_path / "specs", name, {"kind": "files", "url": f"file://{inbox}", "pattern": "day*"},
                      partition={"column": "listed_on"})

    run, states = run_ingest(spec, name)
    assert run.state == "success" and states == {"read_files": "success", "validate": "success"}
    found = manifests(name, "validated")
    assert {k: m["rows"] for k, m in found.items()} == {"2026-11-01": 150, "2026-11-02": 150, "2026-11-03": 150}
    day2 = read_validated(name, "2026-11-02")
    assert list(day2.columns) == list(COLUMNS) and day2["listed_on"].iloc[0] == dt.date(2026, 11, 2)
    assert day2["price"].dtype == "float64" and day2["listing_id"].is_unique
    [event] = validated_events(name)
    assert sorted(p["key"] for p in event["partitions"]) == sorted(found) and event["rows"] == 450
    assert event["scrape"]["files_read"] == 3  # the read's statistics ride on the event like a crawl's

    run, states = run_ingest(spec, name)  # nothing new: no read, no validation, no event
    assert states == {"read_files": "skipped", "validate": "skipped"} and len(validated_events(name)) == 1

    changed = pd.DataFrame(day_rows(2))
    changed.loc[0, "price"] = 123_400.0
    changed.to_parquet(inbox / "day2.parquet", index=False)
    run, states = run_ingest(spec, name)
    assert states == {"read_files": "success", "validate": "success"}
    last = validated_events(name)[-1]
    assert [p["key"] for p in last["partitions"]] == ["2026-11-02"] and last["scrape"]["files_read"] == 1
    after = manifests(name, "validated")
    assert after["2026-11-02"]["rows"] == 150 and after["2026-11-02"]["version"] != found["2026-11-02"]["version"]
    assert after["2026-11-01"]["version"] == found["2026-11-01"]["version"]
    assert read_validated(name, "2026-11-02").set_index("listing_id").loc[changed.loc[0, "listing_id"],
                                                                           "price"] == 123_400.0


def test_a_file_that_fails_validation_is_quarantined_and_publishes_nothing(airflow_db, tmp_path):
    name, inbox = "src_bad", tmp_path / "in"
    inbox.mkdir()
    rows = pd.DataFrame(day_rows(4))
    rows["price"] = 5.0  # every price under the suite's minimum
    rows["rooms"] = rows["rooms"].astype(object)
    rows.loc[0, "rooms"] = "many"  # a value that does not parse: kept as null, listed
    rows.to_csv(inbox / "day4.csv", index=False)
    spec = table_spec(tmp_path / "specs", name, {"kind": "files", "url": f"file://{inbox}", "pattern": "*.csv"},
                      partition={"column": "listed_on"})
    run, states = run_ingest(spec, name)
    assert run.state == "failed" and states == {"read_files": "success", "validate": "failed"}
    assert validated_events(name) == [] and manifests(name, "validated") == {}
    quarantined = DATA / name / "quarantine" / "2026-11-04"
    assert json.loads((quarantined / "validation.json").read_text())["success"] is False
    rejects = [json.loads(line) for line in (quarantined / "ingest_rejects.jsonl").read_text().splitlines()]
    assert rejects[0]["kind"] == "field" and "'many' is not an integer" in rejects[0]["reason"]


def test_bad_files_are_refused_alone_naming_file_and_column_and_the_good_ones_are_read(airflow_db, tmp_path):
    # issue 25, cases 3 (a NUL byte cut "b\0 2" to "b"), 7 (a Parquet missing a column, a struct column,
    # booleans for a number, mixed UTC offsets) and 9 (one bad file stopped the source for good)
    name, inbox = "src_hostile", tmp_path / "in"
    inbox.mkdir()
    good = pd.DataFrame(day_rows(5))
    good.to_csv(inbox / "a_good.csv", index=False)
    lines = pd.DataFrame(day_rows(6)).to_csv(index=False).split("\n")
    lines[1] = lines[1].replace(",", "\0 2,", 1)  # in the first data row's first column: the key
    (inbox / "b_nul.csv").write_text("\n".join(lines))
    pd.DataFrame(day_rows(7)).drop(columns=["area_m2"]).to_parquet(inbox / "c_missing.parquet", index=False)
    struct = pd.DataFrame(day_rows(8))
    struct["city"] = [{"name": c} for c in struct["city"]]
    struct.to_parquet(inbox / "d_struct.parquet", index=False)
    booleans = pd.DataFrame(day_rows(9))
    booleans["price"] = [i % 2 == 0 for i in range(len(booleans))]
    booleans.to_parquet(inbox / "e_bool.parquet", index=False)
    spec = table_spec(tmp_path / "specs", name, {"kind": "files", "url": f"file://{inbox}", "pattern": "*"},
                      partition={"column": "listed_on"})

    run, states = run_ingest(spec, name)
    assert states == {"read_files": "success", "validate": "success"}
    found = manifests(name, "validated")
    assert {k: m["rows"] for k, m in found.items()} == {"2026-11-05": 150}  # the good file, whole
    event = validated_events(name)[-1]["scrape"]
    assert event["files_read"] == 1 and event["files_refused"] == 4
    rejects = [json.loads(line) for line in (DATA / name / "raw" / "2026-11-05" / "ingest_rejects.jsonl")
               .read_text().splitlines()]
    files = {r["origin"].rsplit("/", 1)[1]: r["reason"] for r in rejects if r["kind"] == "file"}
    assert "line 2, column 'listing_id' holds a NUL byte" in files["b_nul.csv"]
    assert "columns ['area_m2'] named in source.fields are missing" in files["c_missing.parquet"]
    # a struct or booleans: the file's schema does not match, never text or 1.0/0.0
    assert "column 'city' holds nested or binary values (dict), not string" in files["d_struct.parquet"]
    assert "column 'price' holds booleans, not number" in files["e_bool.parquet"]

    run, states = run_ingest(spec, name)  # the refused files are not read again until they change
    assert states == {"read_files": "skipped", "validate": "skipped"}
    good.to_csv(inbox / "b_nul.csv", index=False)  # fixed at the source: read again
    run, states = run_ingest(spec, name)
    assert states["read_files"] == "success" and validated_events(name)[-1]["scrape"]["files_read"] == 1


def test_files_on_s3_through_the_amazon_connection(airflow_db, moto_url, tmp_path):
    require_s3fs()
    name = "src_s3"
    s3 = boto_client("s3", moto_url)
    s3.create_bucket(Bucket="upstream")
    s3.put_object(Bucket="upstream", Key="exports/day5.csv", Body=pd.DataFrame(day_rows(5)).to_csv(index=False))
    s3.put_object(Bucket="upstream", Key="other/day6.csv", Body=pd.DataFrame(day_rows(6)).to_csv(index=False))
    old = set_env({"AIRFLOW_CONN_UPSTREAM_S3": aws_connection(moto_url)})
    try:
        spec = table_spec(tmp_path / "specs", name, {"kind": "files", "url": "s3://upstream/exports/",
                                                     "pattern": "*.csv", "conn_id": "upstream_s3"})
        # No partition.column: the run's data key names the partition (here from the Params form).
        run, states = run_ingest(spec, name, partition="2026-11-05")
        assert states == {"read_files": "success", "validate": "success"}
        assert {k: m["rows"] for k, m in manifests(name, "validated").items()} == {"2026-11-05": 150}
        state = json.loads((DATA / name / "state" / "file_state.json").read_text())
        [(url, fingerprint)] = state["files"].items()
        assert url == "s3://upstream/exports/day5.csv" and fingerprint["etag"]  # S3 gives an ETag
        run, states = run_ingest(spec, name, partition="2026-11-05")
        assert states["read_files"] == "skipped"
    finally:
        restore_env(old)


def test_a_query_on_postgres_reads_only_rows_past_its_watermark(airflow_db, source_db, tmp_path):
    import psycopg2

    name, (dsn, uri) = "src_sql", source_db
    db = psycopg2.connect(**dsn)
    db.autocommit = True
    cursor = db.cursor()
    cursor.execute("CREATE TABLE listings (listing_id text primary key, listed_on date, city text, condition text, "
                   "area double precision, rooms int, age_years int, distance_km double precision, "
                   "price double precision, updated_at timestamptz not null)")

    def insert(rows, at):
        for r in rows:
            cursor.execute("INSERT INTO listings VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (listing_id) DO "
                           "UPDATE SET price = EXCLUDED.price, updated_at = EXCLUDED.updated_at",
                           (r["listing_id"], r["listed_on"], r["city"], r["condition"], r["area_m2"], r["rooms"],
                            r["age_years"], r["distance_km"], r["price"], at))

    insert(day_rows(1), dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC))
    fields = {c: {"type": t} for c, t in COLUMNS.items()} | {"area_m2": {"type": "number", "column": "area"},
                                                             "updated_at": {"type": "string"}}
    old = set_env({"AIRFLOW_CONN_LISTINGS_PG": uri})
    try:
        spec = table_spec(tmp_path / "specs", name, {
            "kind": "sql", "conn_id": "listings_pg", "query": "SELECT * FROM listings", "fields": fields,
            "watermark_column": "updated_at"}, partition={"column": "listed_on"})
        run, states = run_ingest(spec, name)
        assert states == {"query": "success", "validate": "success"}
        first = manifests(name, "validated")
        assert {k: m["rows"] for k, m in first.items()} == {"2026-11-01": 150}
        assert read_validated(name, "2026-11-01")["area_m2"].notna().all()  # renamed from the table's 'area'

        run, states = run_ingest(spec, name)  # unchanged table: nothing new
        assert states == {"query": "skipped", "validate": "skipped"}

        later = dt.datetime(2026, 11, 2, 12, tzinfo=dt.UTC)
        insert(day_rows(2), later)
        moved = dict(day_rows(1)[0], price=999_900.0)
        insert([moved], later)  # an update of a day-1 row
        run, states = run_ingest(spec, name)
        assert states == {"query": "success", "validate": "success"}
        event = validated_events(name)[-1]
        assert event["scrape"]["rows_new"] == 151 and sorted(p["key"] for p in event["partitions"]) == \
            ["2026-11-01", "2026-11-02"]
        after = manifests(name, "validated")
        assert {k: m["rows"] for k, m in after.items()} == {"2026-11-01": 150, "2026-11-02": 150}
        assert read_validated(name, "2026-11-01").set_index("listing_id").loc[moved["listing_id"],
                                                                               "price"] == 999_900.0
    finally:
        restore_env(old)
        db.close()


def test_labels_from_a_postgres_query_land_in_partitions_named_by_their_day(airflow_db, source_db, tmp_path):
    """labels.kind sql: rows past the watermark go to the label partition their day names; the same rows
    delivered again change nothing; a changed label is kept, and the contradiction listed."""
    import psycopg2
    from mlops_pack.dag_factory import build_dags

    name, (dsn, uri) = "sql_labels", source_db
    db = psycopg2.connect(**dsn)
    db.autocommit = True
    cursor = db.cursor()
    cursor.execute("CREATE TABLE sales (listing_id text, sold_price double precision, sold_on date, "
                   "recorded_at timestamptz not null)")

    def sell(rows, at):
        cursor.executemany("INSERT INTO sales VALUES (%s,%s,%s,%s)", [(*r, at) for r in rows])

    def labels_run():
        run = build_dags(spec)[f"{name}__labels"].test()
        return task_states(f"{name}__labels", run.run_id)["labels"]

    def rows(key):
        return pd.read_parquet(manifests(name, "labels")[key]["uri"].removeprefix("file://")).set_index("listing_id")

    t1, t2, t3 = (dt.datetime(2026, 11, d, 12, tzinfo=dt.UTC) for d in (1, 2, 3))
    sell([("a", 100.0, dt.date(2026, 11, 1)), ("b", 200.0, dt.date(2026, 11, 1)), ("c", 300.0, dt.date(2026, 11, 2)),
          ("d", None, dt.date(2026, 11, 2))], t1)
    old = set_env({"AIRFLOW_CONN_SALES_PG": uri})
    try:
        spec = table_spec(tmp_path / "specs", name, {"kind": "files", "url": "file:///unused/"}, labels={
            "kind": "sql", "conn_id": "sales_pg", "query": "SELECT * FROM sales", "target_column": "sold_price",
            "partition_column": "sold_on", "watermark_column": "recorded_at", "cron": None})
        write_dag_file(spec, name)
        assert labels_run() == "success"
        first = manifests(name, "labels")
        assert {k: (m["rows"], m["rejects"]) for k, m in first.items()} == {"2026-11-01": (2, 0),
                                                                             "2026-11-02": (1, 1)}
        assert labels_run() == "skipped"  # nothing past the watermark

        sell([("a", 100.0, dt.date(2026, 11, 1)), ("e", 500.0, dt.date(2026, 11, 2))], t2)  # a: delivered again
        assert labels_run() == "success"
        second = manifests(name, "labels")
        assert second["2026-11-01"]["version"] == first["2026-11-01"]["version"]  # changed nothing
        assert second["2026-11-02"]["rows"] == 2 and rows("2026-11-02").loc["e", "label"] == 500.0

        sell([("b", 250.0, dt.date(2026, 11, 1))], t3)  # b: a corrected price
        assert labels_run() == "success"
        third = manifests(name, "labels")["2026-11-01"]
        assert third["rows"] == 2 and third["contradictions"] == 1 and rows("2026-11-01").loc["b", "label"] == 250.0
        [listed] = [json.loads(line) for line in
                    (DATA / name / "labels" / "2026-11-01" / "contradictions.jsonl").read_text().splitlines()]
        assert (listed["key"], listed["label"], listed["contradicts"]) == ("b", 250.0, 200.0)
        assert labels_run() == "skipped"
    finally:
        restore_env(old)
        db.close()
