"""Cooldown of drift signals, so one drifted market does not start a retrain storm."""

from __future__ import annotations

import datetime as dt

from mlops_pack.core.storage import read_json, write_json


def claim(marker, cooldown_minutes: float, now: dt.datetime | None = None) -> bool:
    """True (and the marker updated) when no signal was claimed within ``cooldown_minutes``."""
    now = now or dt.datetime.now(dt.UTC)
    if cooldown_minutes > 0 and marker.exists():
        last = dt.datetime.fromisoformat(read_json(marker)["signalled_at"])
        if now - last < dt.timedelta(minutes=cooldown_minutes):
            return False
    write_json(marker, {"signalled_at": now.isoformat()})
    return True


REMEMBERED = 1000  # keys a first_time marker keeps: the newest ones


def first_time(marker, key: str, now: dt.datetime | None = None) -> bool:
    """True (and ``key`` remembered in ``marker``) the first time ``key`` is seen; False after that.
    Used to alert once per thing (e.g. one decay alert per model version and partition)."""
    seen = read_json(marker).get("seen", {}) if marker.exists() else {}
    if key in seen:
        return False
    seen[key] = (now or dt.datetime.now(dt.UTC)).isoformat()
    write_json(marker, {"seen": dict(sorted(seen.items(), key=lambda kv: kv[1])[-REMEMBERED:])})
    return True
