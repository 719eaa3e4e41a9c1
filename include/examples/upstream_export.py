"""Another team's DAG, as the pack sees it: it exports a file and announces it with an asset event.

Copy it into your dags folder to try the upstream trigger (docs/ingestion.md). A pipeline spec that
names the asset (``events.upstream_assets: [{name: team_upstream.listings_export}]``) starts its
``<name>__ingest`` on each event; the event's extra tells it which file to read and which partition
it fills: ``{"file": "day3.csv", "partition": "2026-11-03"}``. Trigger it with that conf from the UI
or the REST API.
"""

from __future__ import annotations

from airflow.sdk import Asset, Metadata, Param, dag, task

LISTINGS_EXPORT = Asset(name="team_upstream.listings_export", uri="upstream://team/listings_export")


@dag(schedule=None, catchup=False, tags=["example", "upstream"],
     params={"file": Param("", type="string", description="the exported file, relative to the pack's source.url"),
             "partition": Param("", type="string", description="the data key it holds, e.g. 2026-11-03")})
def team_upstream_export():
    @task(outlets=[LISTINGS_EXPORT])
    def announce(params=None):
        if not params["file"] or not params["partition"]:
            raise ValueError("give 'file' and 'partition' in the run's conf")
        # Their export step would write the file here; the event says where it is and what it holds.
        yield Metadata(LISTINGS_EXPORT, extra={"file": params["file"], "partition": params["partition"]})

    announce()


team_upstream_export()
