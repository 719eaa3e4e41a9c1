"""Pipeline specs for the file and SQL source tests: the demo pipeline with another ``source``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.support.env import REPO

COLUMNS = {"listing_id": "string", "listed_on": "date", "city": "string", "condition": "string",
           "area_m2": "number", "rooms": "integer", "age_years": "integer", "distance_km": "number",
           "price": "number"}


def table_spec(folder: Path, name: str, source: dict[str, Any], **top: Any) -> Path:
    """The demo spec named ``name`` with ``source`` (fields filled in) and top-level overrides ``top``."""
    spec = yaml.safe_load((REPO / "include" / "pipelines" / "listings.yaml").read_text())
    spec["name"] = name
    spec["validation"]["suite_file"] = str(REPO / "include" / "suites" / "listings.json")
    spec["source"] = {"key": "listing_id", "fields": {c: {"type": t} for c, t in COLUMNS.items()}, **source}
    spec["promotion"]["min_holdout_rows"] = 50
    spec["schedule"] = {"ingest": None}
    spec.pop("partition", None)
    for key, value in top.items():
        spec[key] = value
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def day_rows(day: int, records: int = 150) -> list[dict]:
    from demo_site.generator import SiteState, day_records

    return day_records(SiteState(day=day, records_per_day=records))
