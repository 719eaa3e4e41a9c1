"""Day-first dates give the right partitions from every source kind, and are never guessed without
``date_formats``: the ingest DAG (dag.test) on CSV and JSON-lines files and on scraped pages."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.sources.dmy_data import DATES, Site, diabetes_table, spec_file
from tests.sources.test_source_kinds import DATA, manifests, read_validated, run_ingest

pytestmark = pytest.mark.integration
DMY = {"date_formats": ["%d/%m/%Y"]}


def task_tries(dag_id: str, run_id: str) -> dict[str, tuple[str, int]]:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        tis = session.scalars(select(TaskInstance).where(TaskInstance.dag_id == dag_id,
                                                         TaskInstance.run_id == run_id))
        return {ti.task_id: (str(ti.state), ti.try_number) for ti in tis}


def write_files(folder, table, fmt: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        table.to_csv(folder / "visits.csv", index=False, float_format="%.6f")
    else:
        table.to_json(folder / "visits.jsonl", orient="records", lines=True)


def expected_partitions(table) -> dict[str, int]:
    return {DATES[d]: int(n) for d, n in table["visit_date"].value_counts().items()}


@pytest.fixture(scope="module")
def site():
    site = Site(diabetes_table())
    yield site
    site.stop()


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_files_with_day_first_dates_land_in_the_partitions_of_their_days(airflow_db, tmp_path, fmt):
    name, table = f"dmy_{fmt}", diabetes_table()
    write_files(tmp_path / "in", table, fmt)
    spec = spec_file(tmp_path / "specs", name, {"kind": "files", "url": f"file://{tmp_path / 'in'}", **DMY})
    run, _ = run_ingest(spec, name)
    assert run.state == "success"
    assert {k: m["rows"] for k, m in manifests(name, "validated").items()} == expected_partitions(table)
    december = read_validated(name, "2026-12-03")
    assert set(december["visit_date"].astype(str)) == {"2026-12-03"} and december["bmi"].dtype == "float64"
    assert not (DATA / name / "raw" / "2026-12-03" / "ingest_rejects.jsonl").exists()  # nothing refused


def test_scraped_day_first_dates_give_the_same_partitions_and_rows_as_the_files(airflow_db, tmp_path, site):
    table = diabetes_table()
    run, states = run_ingest(spec_file(tmp_path / "specs", "dmy_scrape", site.source(**DMY)), "dmy_scrape")
    assert run.state == "success" and states == {"scrape": "success", "validate": "success"}
    assert {k: m["rows"] for k, m in manifests("dmy_scrape", "validated").items()} == expected_partitions(table)
    write_files(tmp_path / "in", table, "csv")
    spec = spec_file(tmp_path / "specs", "dmy_same", {"kind": "files", "url": f"file://{tmp_path / 'in'}", **DMY})
    assert run_ingest(spec, "dmy_same")[0].state == "success"
    for key in expected_partitions(table):  # one typing rule: the same rows, values and types
        pd.testing.assert_frame_equal(read_validated("dmy_scrape", key), read_validated("dmy_same", key))


def test_scraped_day_first_dates_without_date_formats_fail_naming_field_samples_and_option(
        airflow_db, tmp_path, site, capfd):
    name = "dmy_scrape_bare"
    capfd.readouterr()
    run, _ = run_ingest(spec_file(tmp_path / "specs", name, site.source()), name)
    log = capfd.readouterr()
    assert run.state == "failed"
    assert task_tries(f"{name}__ingest", run.run_id)["scrape"] == ("failed", 1)  # a retry would read the same
    text = log.out + log.err
    assert "partition.column 'visit_date' (date) could not be read from values such as '03/12/2026', " \
           "'14/11/2026'" in text and "source.date_formats: ['%d/%m/%Y']" in text
    assert manifests(name, "raw") == {}
    [folder] = (DATA / name / "quarantine" / "_failed_reads").iterdir()
    rejects = [json.loads(line) for line in (folder / "ingest_rejects.jsonl").read_text().splitlines()]
    assert any(r["kind"] == "field" and r["value"] == "03/12/2026" and "not guessed" in r["reason"] for r in rejects)


def test_ambiguous_file_dates_without_date_formats_are_refused_with_a_reason_not_guessed(airflow_db, tmp_path,
                                                                                      capfd):
    name, table = "dmy_ambiguous", diabetes_table(["03/12/2026", "04/12/2026"])  # day or month first?
    write_files(tmp_path / "in", table, "csv")
    capfd.readouterr()
    run, _ = run_ingest(spec_file(tmp_path / "specs", name, {"kind": "files", "url": f"file://{tmp_path / 'in'}"}),
                        name)
    text = "".join(capfd.readouterr())
    assert run.state == "failed" and task_tries(f"{name}__ingest", run.run_id)["read_files"] == ("failed", 1)
    assert manifests(name, "raw") == {} and manifests(name, "validated") == {}  # no 2026-03-12, no 2026-04-12
    assert "'03/12/2026', '04/12/2026'" in text and "source.date_formats: ['%d/%m/%Y']" in text
    assert "'%m/%d/%Y'" in text  # both layouts fit: the user is told to pick, the pack does not
    [folder] = (DATA / name / "quarantine" / "_failed_reads").iterdir()
    rejects = [json.loads(line) for line in (folder / "ingest_rejects.jsonl").read_text().splitlines()]
    assert {r["value"] for r in rejects if r["kind"] == "field"} == {"03/12/2026", "04/12/2026"}
    assert all("is not an ISO date" in r["reason"] for r in rejects if r["kind"] == "field")
