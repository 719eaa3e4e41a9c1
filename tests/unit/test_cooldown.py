"""core/cooldown.py: one drift signal per cooldown window, remembered in a marker file."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import ObjectStoragePath
from mlops_pack.core.cooldown import claim
from mlops_pack.core.storage import read_json

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def marker(tmp_path) -> ObjectStoragePath:
    return ObjectStoragePath(f"file://{tmp_path}/state/drift_signal.json")


def test_the_first_signal_is_claimed_and_recorded(tmp_path):
    path = marker(tmp_path)
    assert claim(path, 60, now=T0) is True
    assert read_json(path) == {"signalled_at": T0.isoformat()}


def test_a_second_signal_inside_the_window_is_refused_and_does_not_extend_it(tmp_path):
    path = marker(tmp_path)
    assert claim(path, 60, now=T0)
    assert claim(path, 60, now=T0 + dt.timedelta(minutes=59)) is False
    assert read_json(path)["signalled_at"] == T0.isoformat()  # the window still ends at T0 + 60 min
    assert claim(path, 60, now=T0 + dt.timedelta(minutes=60)) is True
    assert read_json(path)["signalled_at"] == (T0 + dt.timedelta(minutes=60)).isoformat()


def test_a_zero_cooldown_claims_every_signal(tmp_path):
    path = marker(tmp_path)
    assert all(claim(path, 0, now=T0) for _ in range(3))


def test_without_now_the_current_utc_time_is_used(tmp_path):
    path = marker(tmp_path)
    before = dt.datetime.now(dt.UTC)
    assert claim(path, 5)
    stamped = dt.datetime.fromisoformat(read_json(path)["signalled_at"])
    assert before <= stamped <= dt.datetime.now(dt.UTC)
    assert claim(path, 5) is False


def test_first_time_is_true_once_per_key(tmp_path):
    from mlops_pack.core.cooldown import first_time

    marker = ObjectStoragePath(f"file://{tmp_path}/state/alerts.json")
    assert first_time(marker, "v1@2026-11-02__v1")
    assert not first_time(marker, "v1@2026-11-02__v1")
    assert first_time(marker, "v2@2026-11-02__v2") and first_time(marker, "v1@2026-11-03__v1")
