"""Deterministic listing records for one (seed, day), optionally shifted or corrupted.

Standard library only, so the demo server starts in a blink.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

CITIES = ["Lyon", "Lille", "Nantes", "Rennes", "Bordeaux"]
CITY_FACTOR = {"Lyon": 1.25, "Lille": 0.95, "Nantes": 1.0, "Rennes": 1.05, "Bordeaux": 1.2}
CONDITIONS = ["new", "good", "fair", "poor"]
CONDITION_FACTOR = {"new": 1.2, "good": 1.0, "fair": 0.85, "poor": 0.7}
BASE_DATE = dt.date(2026, 11, 1)


@dataclass(frozen=True)
class SiteState:
    """What the site shows: which day, and whether that day's market has shifted or is corrupt.

    ``shift`` moves the inputs and the prices (the demo's drift); ``price_factor`` changes only how
    prices follow from the inputs (concept drift: every input keeps its distribution);
    ``mix_shift`` changes only the mix of inputs (cities, conditions, ages, all within the usual
    ranges), prices following them as before (an input shift that costs a good model nothing).
    """

    seed: int = 7
    day: int = 1
    shift: bool = False
    corrupt: bool = False
    price_factor: float = 1.0
    mix_shift: bool = False
    records_per_day: int = 2000
    page_size: int = 50

    @property
    def pages(self) -> int:
        return -(-self.records_per_day // self.page_size)


def listing_date(day: int) -> dt.date:
    return BASE_DATE + dt.timedelta(days=day - 1)


def day_records(state: SiteState) -> list[dict]:
    """All listings of the state's day, in page order."""
    rng = random.Random(f"{state.seed}-{state.day}-{state.shift}")
    city_weights = [0.1, 0.1, 0.1, 0.2, 0.5] if state.shift else [0.3, 0.2, 0.2, 0.15, 0.15]
    condition_weights = [0.15, 0.45, 0.3, 0.1]
    mean_age = 12 if state.shift else 28
    if state.mix_shift:
        city_weights, condition_weights, mean_age = [0.05, 0.45, 0.4, 0.05, 0.05], [0.05, 0.25, 0.45, 0.25], 40
    records = []
    for i in range(state.records_per_day):
        city = rng.choices(CITIES, weights=city_weights)[0]
        condition = rng.choices(CONDITIONS, weights=condition_weights)[0]
        area = max(12.0, rng.gauss(95.0 if state.shift else 62.0, 28.0 if state.shift else 20.0))
        rooms = max(1, min(8, round(area / 22 + rng.gauss(0, 0.6))))
        age = max(0, int(rng.gauss(mean_age, 14)))
        distance = abs(rng.gauss(9.0 if state.shift else 4.0, 3.0))
        price = (
            area * 3100 * CITY_FACTOR[city] * CONDITION_FACTOR[condition]
            * (1.0 - min(age, 80) * 0.003) * (1.0 - min(distance, 30) * 0.012)
            + rooms * 6000
        ) * (1.35 if state.shift else 1.0) * state.price_factor * rng.gauss(1.0, 0.06)
        records.append({
            "listing_id": f"d{state.day:03d}-{i:05d}",
            "listed_on": listing_date(state.day).isoformat(),
            "city": city,
            "condition": condition,
            "area_m2": round(area, 1),
            "rooms": rooms,
            "age_years": age,
            "distance_km": round(distance, 2),
            "price": round(price, -2),
        })
    return records
