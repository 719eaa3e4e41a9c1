"""Partition identity: which partition a run's rows belong to, named by the data, never by the run.

Plain functions, no Airflow import. How a key is chosen (docs/storage.md):

1. the spec's ``partition.column``, when set: each row's own value names its partition (the
   listing date of a scraped day), so any run that sees the same data writes the same partitions;
2. otherwise the run's data key: an explicit ``partition`` in the run's conf (the Params form),
   else the run's Airflow ``partition_key``, else the single ``partition`` the triggering asset
   events name, else the run's logical date (scheduled runs and backfills);
3. a run with none of these (a REST- or asset-triggered run with no logical date) has no data
   identity: it fails with an error saying how to give it one, instead of inventing a run-named key.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from mlops_pack.core.errors import MlopsError

if TYPE_CHECKING:
    import pandas as pd

KEY_PATTERN = re.compile(r"[^A-Za-z0-9._=-]+")
MAX_KEY_LENGTH = 120


class PartitionError(MlopsError, ValueError):
    """A run's data has no partition identity, or the identity is unusable; the message says why."""


class HoldoutLeak(MlopsError, ValueError):
    """Holdout rows share keys with training rows: the gate would judge on data the model has seen."""


def safe_key(value: Any) -> str:
    """A storage-safe partition key for ``value`` (dates and datetimes as ISO text)."""
    if isinstance(value, dt.datetime):
        value = value.isoformat()
    elif isinstance(value, dt.date):
        value = value.isoformat()
    key = KEY_PATTERN.sub("_", str(value)).strip("_.")
    if not key:
        raise PartitionError(f"{value!r} cannot name a partition: nothing storage-safe is left of it")
    if len(key) > MAX_KEY_LENGTH:
        raise PartitionError(f"partition key {key[:40]!r}... is longer than {MAX_KEY_LENGTH} characters")
    return key


def run_data_key(*, requested: str | None, run_partition_key: str | None, event_keys: list[str],
                 logical_date: dt.datetime | None, date_format: str) -> str | None:
    """The data key of a run (see the module docstring, rule 2), or None when it has none."""
    if requested:
        return safe_key(requested)
    if run_partition_key:
        return safe_key(run_partition_key)
    distinct = sorted(set(event_keys))
    if len(distinct) > 1:
        raise PartitionError(f"the triggering asset events name {len(distinct)} partitions {distinct}: a run "
                             "ingests one; trigger one run per partition or set partition.column in the spec")
    if distinct:
        return safe_key(distinct[0])
    if logical_date is not None:
        return safe_key(logical_date.strftime(date_format))
    return None


def require_identity(column: str | None, run_key: str | None) -> None:
    """Raise PartitionError, saying how to fix it, when neither the data nor the run names a partition."""
    if column is None and run_key is None:
        raise PartitionError(
            "this run has no data identity: it has no logical date (a REST- or asset-triggered run), no "
            "'partition' in its conf and no partition_key. Trigger it with conf {\"partition\": "
            "\"2026-11-02\"}, or set partition.column in the spec to name partitions by a column of the data")


def split_by_key(frame: pd.DataFrame, column: str | None, run_key: str | None,
                 ) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Rows grouped by partition key, and the rows that have none (a null ``column`` value).

    With ``column`` each row's value names its partition; without it every row belongs to
    ``run_key``. Raises PartitionError when neither can name the partition.
    """
    require_identity(column, run_key)
    if column is None:
        return ({run_key: frame.reset_index(drop=True)} if len(frame) else {}), frame.iloc[0:0]
    if column not in frame.columns:
        raise PartitionError(f"partition.column {column!r} is not a column of the data {list(frame.columns)}")
    keyless = frame[column].isna()
    groups = {}
    for value, rows in frame[~keyless].groupby(frame.loc[~keyless, column].map(safe_key), sort=True):
        groups[str(value)] = rows.reset_index(drop=True)
    return groups, frame[keyless].reset_index(drop=True)


def dedupe_latest(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """One row per ``key``: the last occurrence wins (frames are concatenated oldest partition first)."""
    return frame.drop_duplicates(subset=[key], keep="last").reset_index(drop=True)


def check_disjoint(train: pd.DataFrame, holdout: pd.DataFrame, key: str) -> None:
    """Raise HoldoutLeak naming the overlap when a holdout row's ``key`` is also a training row's."""
    shared = sorted(set(train[key].dropna()) & set(holdout[key].dropna()), key=str)
    if shared:
        raise HoldoutLeak(f"{len(shared)} of {len(holdout)} holdout rows share {key!r} with training rows "
                          f"(e.g. {', '.join(map(str, shared[:5]))}): the gate refuses to judge on data the model "
                          "has seen")


def prediction_key(source_key: str, model_version: str) -> str:
    """Key of the predictions of validated partition ``source_key`` by model version ``model_version``."""
    return f"{source_key}__v{model_version}"


def combined_key(keys: list[str]) -> str:
    """One key for a set of partitions (a drift report over several prediction partitions)."""
    from mlops_pack.core.storage import digest

    ordered = sorted(set(keys))
    if not ordered:
        raise PartitionError("no partitions given")
    if len(ordered) == 1:
        return ordered[0]
    return safe_key(f"{ordered[0]}_to_{ordered[-1]}_{len(ordered)}p_{digest(*ordered)[:8]}")


def window_key(keys: list[str], version: str) -> str:
    """Key of a training set: the partitions it spans and its content version."""
    ordered = sorted(set(keys))
    span = ordered[0] if len(ordered) == 1 else f"{ordered[0]}_to_{ordered[-1]}"
    return safe_key(f"{span}__{version}")


def partitions_to_score(*, requested: list[str], event_keys: list[str], validated: list[str],
                        scored_sources: set[str]) -> list[str]:
    """Validated partitions a score run works on.

    The ones asked for (Params) or named by triggering validated events; otherwise (a champion
    change, a plain manual run) the newest validated partition plus every one never scored, so a
    partition that arrived before the first champion is not left unscored.
    """
    chosen = list(requested) or list(event_keys)
    if not chosen and validated:
        chosen = [k for k in validated if k not in scored_sources] + [validated[-1]]
    unknown = [k for k in chosen if k not in validated]
    if unknown:
        raise PartitionError(f"no validated partition {unknown}; validated partitions: {validated[-10:]}")
    return list(dict.fromkeys(chosen))
