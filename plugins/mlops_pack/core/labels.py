"""Label partitions: the truth that arrives after scoring, kept as ``labels/<partition>`` partitions.

Plain functions, no Airflow import. A label partition holds one row per record key: the key (the
spec's ``source.key``), ``label`` (the true ``model.target``) and ``labelled_at`` (when the pack
first received this partition; kept across re-deliveries, so the same labels delivered again make
the same rows and the same data version). It is named by the data it holds: the validated
partition that carried the labels (``kind: later_partitions``), the label file (``kind: files``)
each row's ``partition_column`` value (``kind: sql``: a day, ``label_partitions``), or the
``partition`` an event names (``kind: events``: REST or queue messages, ``label_deliveries``).

Nothing is silently overwritten. Rows without a key or a label are listed as rejects. A key given
two different labels within one delivery, or a label differing from the one another label
partition holds for the key, is a *contradiction*: every one is listed in the partition's
``contradictions.jsonl`` (key, both labels, where each came from). The partition still keeps what
its delivery said; the join (core/outcomes.py) resolves a contradicted key by one documented rule,
the latest arrival wins, and counts the keys it resolved.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    import pandas as pd

LABEL, LABELLED_AT = "label", "labelled_at"
LABELS_AREA = "labels"
CONTRADICTIONS_FILE = "contradictions.jsonl"
REJECTS_FILE = "label_rejects.jsonl"
MAX_LISTED = 1000  # contradictions and rejects listed per partition; all are counted


def delivery_rows(frame: pd.DataFrame, key: str, origin: str) -> tuple[pd.DataFrame, list[dict], list[dict]]:
    """The labels of one delivery (``key`` and ``label`` columns, already typed), one row per key.

    Returns (rows, rejects, contradictions): rows lacking a key or a label are rejects; a key
    repeated with the same label collapses to one row; a key repeated with different labels keeps
    the label read last and each differing earlier one is a contradiction naming ``origin``.
    """
    missing = [c for c in (key, LABEL) if c not in frame.columns]
    if missing:
        raise ValueError(f"{origin}: label data lacks column(s) {missing} (has {list(frame.columns)})")
    frame = frame[[key, LABEL]].reset_index(drop=True)
    no_key = frame[key].isna() | (frame[key].astype("string").str.strip() == "").fillna(False)
    no_label = frame[LABEL].isna() & ~no_key
    rejects = [{"origin": origin, "reason": f"no value in key {key!r}", "label": _plain(v)}
               for v in frame.loc[no_key, LABEL].head(MAX_LISTED)]
    rejects += [{"origin": origin, "reason": "no label", "key": _plain(k)}
                for k in frame.loc[no_label, key].head(MAX_LISTED - len(rejects))]
    kept = frame[~no_key & ~no_label]
    last = kept.drop_duplicates(subset=[key], keep="last")
    contradictions = []
    repeated = kept[kept.duplicated(subset=[key], keep=False)]
    if len(repeated):
        final = dict(zip(last[key], last[LABEL], strict=True))
        for k, value in zip(repeated[key], repeated[LABEL], strict=True):
            if not same_label(value, final[k]) and len(contradictions) < MAX_LISTED:
                contradictions.append({"key": _plain(k), "label": _plain(final[k]), "contradicts": _plain(value),
                                       "where": f"twice in {origin}", "kept": "label read last"})
    rows = last.sort_values(key, kind="stable", ignore_index=True)
    return rows, rejects, contradictions


def contradictions_with(rows: pd.DataFrame, other: pd.DataFrame, key: str, other_partition: str,
                        limit: int = MAX_LISTED) -> list[dict[str, Any]]:
    """Keys whose label in ``rows`` differs from the one label partition ``other_partition`` (its
    rows ``other``) holds, as contradiction records (at most ``limit``)."""
    joined = rows[[key, LABEL]].merge(other[[key, LABEL]], on=key, suffixes=("", "_other"))
    if joined.empty:
        return []
    differ = ~same_label(joined[LABEL].to_numpy(), joined[f"{LABEL}_other"].to_numpy())
    return [{"key": _plain(k), "label": _plain(a), "contradicts": _plain(b), "where": f"label partition "
             f"{other_partition}", "kept": "both; the join takes the latest arrival"}
            for k, a, b in joined.loc[differ, [key, LABEL, f"{LABEL}_other"]].head(limit).itertuples(index=False)]


def with_arrival(rows: pd.DataFrame, previous_manifest: dict[str, Any] | None,
                 now: dt.datetime | None = None) -> tuple[pd.DataFrame, str]:
    """``rows`` with ``labelled_at``: when the partition first arrived (its previous manifest's
    ``first_arrived_at``, else ``now``), so a re-delivery keeps the same rows. Returns (rows, that time)."""
    import pandas as pd

    first = (previous_manifest or {}).get("first_arrived_at") or (now or dt.datetime.now(dt.UTC)).isoformat()
    out = rows.copy()
    out[LABELLED_AT] = pd.Series([pd.Timestamp(first)] * len(out), dtype="datetime64[us, UTC]")
    return out, first


def label_file_partition(url: str) -> str:
    """The label partition a label file becomes: its name without the format suffixes, storage-safe."""
    from mlops_pack.core.partitions import safe_key

    name = url.rstrip("/").rsplit("/", 1)[-1]
    for suffix in (".gz", ".csv", ".parquet", ".pq", ".jsonl", ".ndjson", ".json"):
        name = name.removesuffix(suffix)
    return safe_key(name)


def label_partitions(values: pd.Series, date_format: str = "%Y-%m-%d") -> pd.Series:
    """The label partition each row of a SQL label source belongs to, from its ``partition_column``
    ``values``: a date or timestamp names its day (``date_format``), anything else its text, made
    storage-safe; a missing value is None (the row is a reject)."""
    import datetime as dt_

    import pandas as pd

    from mlops_pack.core.partitions import safe_key

    def key(value: Any) -> str | None:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return None
        if isinstance(value, dt_.date | pd.Timestamp):
            return value.strftime(date_format)
        return safe_key(str(value).strip()) if str(value).strip() else None

    return values.map(key).astype(object)


LABEL_EXAMPLE = '{"partition": "2026-11-03", "labels": [{"<key>": "a1", "<target>": 120000}]}'


def label_deliveries(extra: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The labels one event of the ``<name>.label_inbox`` asset delivers: ``[{"partition", "rows", "origin"}]``,
    one per queue message it carries (Redis, SQS), else one for the event's extra (a REST or upstream
    event). Each message is ``{"partition": <its data's key>, "labels": [{<key column>: ..., <target
    column>: ...}, ...]}``; a malformed one is a MessageError naming it."""
    from mlops_pack.core.inbox import MessageError, message_json, queue_messages
    from mlops_pack.core.partitions import safe_key

    extra = extra or {}
    messages = queue_messages(extra)
    if messages is None:
        fields = extra.get("payload") if isinstance(extra.get("payload"), dict) else extra
        messages = [{"origin": "asset event", "body": fields}]
    out = []
    for message in messages:
        fields, quoted = message_json(message, LABEL_EXAMPLE)
        partition, rows = fields.get("partition"), fields.get("labels")
        if not isinstance(partition, str | int) or not str(partition).strip():
            raise MessageError(f"{message['origin']} names no 'partition' (the key of the data it labels): {quoted}")
        if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
            raise MessageError(f"{message['origin']} has no 'labels' list of objects: {quoted}; e.g. {LABEL_EXAMPLE}")
        out.append({"partition": safe_key(str(partition).strip()), "rows": rows, "origin": message["origin"]})
    return out


def merged_delivery(stored: pd.DataFrame | None, new: pd.DataFrame, key: str) -> pd.DataFrame:
    """A label partition's stored rows (``key``, ``label``) followed by a new delivery's: read in this
    order by :func:`delivery_rows`, a key the delivery labels again keeps the new label, and a new
    label differing from the stored one is a contradiction."""
    import pandas as pd

    if stored is None or stored.empty:
        return new[[key, LABEL]]
    return pd.concat([stored[[key, LABEL]], new[[key, LABEL]]], ignore_index=True)


def same_label(a: Any, b: Any) -> Any:
    """Label equality, element-wise for arrays; numbers compare as numbers (2 == 2.0)."""
    import numpy as np

    a, b = np.asarray(a), np.asarray(b)
    try:
        return a.astype(float) == b.astype(float)
    except (TypeError, ValueError):
        return a.astype(str) == b.astype(str)


def unlabelled(validated: Iterable[str], labelled: Iterable[str]) -> list[str]:
    """Validated partition keys that have no label partition yet, in key order."""
    done = set(labelled)
    return sorted(k for k in validated if k not in done)


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)
