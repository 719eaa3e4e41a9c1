"""Stream a Parquet partition through a model in chunks and write predictions with lineage columns.

Memory stays flat in the number of rows: one record batch is read, predicted and written at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator


class ScoringError(RuntimeError):
    """The partition cannot be scored; the message names the file or column."""


def score_parquet(model: Any, source, target, features: list[str], lineage: dict[str, str],
                  chunk_rows: int = 50_000, keep: list[str] | None = None) -> int:
    """Predict every row of Parquet ``source`` into Parquet ``target``; returns the rows written.

    ``lineage`` (model name, version, scoring run id) becomes constant columns of every row; ``keep``
    names input columns copied beside the prediction (the key, the features for drift checks).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlops_pack.core.storage import atomic_writer

    keep = list(dict.fromkeys([*(keep or []), *features]))
    rows = 0
    with source.open("rb") as src, atomic_writer(target) as dst:
        try:
            reader = pq.ParquetFile(src)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ScoringError(f"{source} is not a readable Parquet file: {exc}") from exc
        missing = [c for c in keep if c not in reader.schema_arrow.names]
        if missing:
            raise ScoringError(f"{source} lacks column(s) {missing} the model needs")
        writer = None
        for batch in _batches(reader, keep, chunk_rows):
            frame = batch.to_pandas()
            frame["prediction"] = model.predict(frame[features])
            for name, value in lineage.items():
                frame[name] = value
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(dst, table.schema)
            writer.write_table(table)
            rows += len(frame)
        if writer is None:  # no rows: still a readable Parquet file with the output's columns
            writer = pq.ParquetWriter(dst, _empty_schema(reader.schema_arrow, keep, lineage))
        writer.close()
    return rows


def _empty_schema(source_schema, keep: list[str], lineage: dict[str, str]):
    import pyarrow as pa

    fields = [source_schema.field(c) for c in keep]
    fields += [pa.field("prediction", pa.float64())] + [pa.field(name, pa.string()) for name in lineage]
    return pa.schema(fields)


def _batches(reader, columns: list[str], chunk_rows: int) -> Iterator:
    yield from reader.iter_batches(batch_size=chunk_rows, columns=columns)
