"""EvidentlyDriftOperator: drift of scored data vs the champion's training data, as stored reports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_pack.links import DriftReportLink
from mlops_pack.operators.base import MlflowOperator, PipelineOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class EvidentlyDriftOperator(MlflowOperator):
    """Compare prediction partitions ``prediction_partitions`` with the reference: the training data
    of the model version that scored them (tag ``train_uri``).

    Writes ``reports/drift/<key>/`` with ``report.html`` and ``report.json`` (Evidently),
    ``summary.json`` and a manifest; ``<key>`` is the prediction partition's key
    (``<validated partition>__v<version>``) or, for several, one key naming the set, so checking the
    same predictions again replaces the same report. Returns the summary {share, threshold, drift,
    drifted_columns, model_version, report_uri, partition, current_rows, reference_rows, sampled,
    report_drifted_columns, shadow}.

    The verdicts come from the reference profile stored with the training set (tag ``profile_uri``,
    core/drift_profile.py): one streaming pass over all prediction rows, with Evidently's default
    method and threshold per column (or the spec's ``drift.methods`` / ``drift.thresholds``).
    The HTML report people read (``drift.report``): by default drawn from the same profile and current
    statistics (core/drift_html.py), so it shows the verdicts' own numbers over every row and costs
    milliseconds (``sampled`` None); with ``evidently``, Evidently renders it from at most
    ``drift.report_sample_rows`` rows of each side (``sampled`` says how many). ``report_drifted_columns``
    is what the report shows.

    Partitions scored in shadow (spec ``scoring.shadow``) add ``shadow``: the challenger's
    predictions against the champion's on every row (``agreement`` of labels, or
    ``mean_abs_difference``) and each model's error on the rows whose label is known by now
    (core/shadow.py); None when the partitions were not shadow-scored.

    :param prediction_partitions: keys of prediction partitions (templated; a list or one key).
    :param mlflow_conn_id: MLflow connection (default ``mlflow_default``).
    """

    template_fields = (*PipelineOperator.template_fields, "prediction_partitions")
    ui_color = "#fde8e8"
    operator_extra_links = (DriftReportLink(),)

    def __init__(self, *, prediction_partitions: list[str] | str, **kwargs: Any):
        super().__init__(**kwargs)
        self.prediction_partitions = prediction_partitions

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_pack.core.drift import spec_columns
        from mlops_pack.core.drift_profile import current_stats_parquet, drift_summary
        from mlops_pack.core.lineage import storage_dataset
        from mlops_pack.core.partitions import combined_key
        from mlops_pack.core.storage import read_manifest

        keys = self.prediction_partitions
        keys = [keys] if isinstance(keys, str) else list(keys or [])
        if not keys:
            raise ValueError("prediction_partitions is empty: no predictions to check for drift")
        folders = [self.storage.partition("predictions", k) for k in keys]
        manifests = [read_manifest(f) for f in folders]
        version = max((m["model_version"] for m in manifests), key=int)
        tags = self.mlflow.version_tags(self.spec.name, version)
        if not tags.get("train_uri"):
            raise ValueError(f"{self.spec.name} version {version} has no train_uri tag: no drift reference")
        reference_folder = self.storage.path(tags["train_uri"]).parent
        numeric, categorical = spec_columns(self.spec)
        columns, drift = [*numeric, *categorical], self.spec.drift
        profile = self._profile(tags, reference_folder, numeric, categorical)
        # One streaming pass over the predictions, column by column: the verdicts use every row,
        # memory stays flat (one column's batch decoded at a time).
        current = current_stats_parquet(profile, _data_files(folders, manifests, columns))
        summary = drift_summary(profile, current, drift.share_threshold, drift.methods, drift.thresholds)
        key = combined_key(keys)
        if drift.report == "evidently":
            summary.update(self._report(key, reference_folder, folders, manifests, numeric, categorical))
        else:
            summary.update(self._profile_report(key, profile, current, summary, version, keys))
        summary.update({"model_version": version, "reference_rows": profile["rows"], "partition": key,
                        "prediction_partitions": sorted(keys)})
        summary["shadow"] = self._shadow(folders, manifests)
        self._commit(key, summary, [m["version"] for m in manifests], read_manifest(reference_folder)["version"])
        self.log.info("Drift share %.2f (threshold %.2f) for %s v%s on %s (%d rows, all of them); drifted columns:"
                      " %s; report (sample: %s) %s", summary["share"], summary["threshold"], self.spec.name,
                      version, key, summary["current_rows"], summary["drifted_columns"], summary["sampled"],
                      summary["report_uri"])
        summary.pop("columns")  # per-column scores stay in summary.json, XCom stays small
        self.lineage.read(*(storage_dataset(str(f)) for f in folders), storage_dataset(str(reference_folder)),
                          self.version_dataset(version))
        self.lineage.wrote(storage_dataset(str(self.storage.partition("reports/drift", key))))
        self.lineage.facets["drift"] = {k: summary.get(k) for k in (
            "partition", "drift", "share", "threshold", "drifted_columns", "model_version", "current_rows",
            "reference_rows")}
        self.refresh_model_card(version)  # its card lists the drift of its predictions
        return summary

    def _shadow(self, folders: list, manifests: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Champion vs challenger on the partitions scored in shadow (core/shadow.py), None without any.

        Labels come from the validated partitions from the scored one on (a later partition may
        bring or correct a row's label), joined on the source key."""
        from mlops_pack.core.shadow import compare_predictions, later_labels

        shadowed = [(f, m) for f, m in zip(folders, manifests, strict=True) if m.get("shadow_model_version")]
        if not shadowed:
            return None
        challenger = max((str(m["shadow_model_version"]) for _, m in shadowed), key=int)
        shadowed = [(f, m) for f, m in shadowed if str(m["shadow_model_version"]) == challenger]
        key, target = self.spec.source.key, self.spec.model.target
        first = min(str(m["source_partition"]) for _, m in shadowed)
        labels = later_labels(self._label_frames(first, key, target), key, target)
        folders_, manifests_ = [f for f, _ in shadowed], [m for _, m in shadowed]
        comparison = compare_predictions(_batches(folders_, manifests_, [key, "prediction", "shadow_prediction"]),
                                         self.spec.model.task, key=key, labels=labels)
        comparison.update({"champion_version": str(max((m["model_version"] for m in manifests_), key=int)),
                           "challenger_version": challenger,
                           "prediction_partitions": sorted(str(m["partition"]) for m in manifests_)})
        self.log.info("Shadow scoring, challenger v%s vs champion v%s: %s", challenger,
                      comparison["champion_version"], comparison)
        return comparison

    def _label_frames(self, first: str, key: str, target: str):
        """``key`` and ``target`` of each validated partition from ``first`` on, oldest first."""
        from mlops_pack.core.storage import list_partitions, read_partition

        for manifest in list_partitions(self.storage.area("validated")):
            if str(manifest.get("partition", "")) < first or target not in (manifest.get("schema") or {target: ""}):
                continue
            yield read_partition(self.storage.partition("validated", str(manifest["partition"])), columns=[key, target])

    def _profile(self, tags: dict[str, str], reference_folder, numeric: list[str], categorical: list[str],
                 ) -> dict[str, Any]:
        """The reference profile stored at training time (tag ``profile_uri``), or, for a version trained
        before profiles existed, one built now from its training set."""
        from mlops_pack.core.drift_profile import build_profile
        from mlops_pack.core.storage import read_json, read_partition

        uri = tags.get("profile_uri")
        if uri and self.storage.path(uri).exists():
            profile = read_json(self.storage.path(uri))
            if set(profile["columns"]) == {*numeric, *categorical}:
                return profile
            self.log.warning("Profile %s covers other columns than the spec's drift columns: rebuilding it", uri)
        else:
            self.log.warning("No stored drift profile for this version: building one from %s", reference_folder)
        frame = read_partition(reference_folder, columns=[*numeric, *categorical])
        return build_profile(frame, numeric, categorical, bins=self.spec.drift.profile_bins)

    def _profile_report(self, key: str, profile: dict[str, Any], current: Any, summary: dict[str, Any],
                        version: str, keys: list[str]) -> dict[str, Any]:
        """The report drawn from what the verdicts used (core/drift_html.py): every current row against the
        reference profile; nothing sampled (``sampled`` is None)."""
        import json

        from mlops_pack.core.drift_html import render_report, report_json
        from mlops_pack.core.storage import write_bytes_atomic

        compared = (f"Prediction partition(s) {', '.join(sorted(keys))} of {self.spec.name} model version {version}, "
                    f"against the training set of version {version} (its reference).")
        folder = self.storage.partition("reports/drift", key)
        html = render_report(f"Data drift: {self.spec.name} {key}", profile, current, summary, compared)
        write_bytes_atomic(folder / "report.html", html.encode())
        write_bytes_atomic(folder / "report.json", json.dumps(report_json(profile, current, summary, compared)).encode())
        return {"report_uri": str(folder / "report.html"), "report_drifted_columns": summary["drifted_columns"],
                "sampled": None}

    def _report(self, key: str, reference_folder, folders: list, manifests: list[dict[str, Any]],
                numeric: list[str], categorical: list[str]) -> dict[str, Any]:
        """Evidently's HTML and JSON report, rendered from at most ``drift.report_sample_rows`` rows a side."""
        import tempfile
        from pathlib import Path

        from mlops_pack.core.drift import drift_report
        from mlops_pack.core.storage import read_manifest, write_bytes_atomic

        drift, columns = self.spec.drift, [*numeric, *categorical]
        reference = sample_partitions([reference_folder], [read_manifest(reference_folder)], columns,
                                      drift.report_sample_rows)
        current = sample_partitions(folders, manifests, columns, drift.report_sample_rows)
        folder = self.storage.partition("reports/drift", key)
        with tempfile.TemporaryDirectory() as tmp:
            shown = drift_report(reference, current, numeric, categorical, drift.share_threshold,
                                 Path(tmp) / "report.html", Path(tmp) / "report.json", drift.methods, drift.thresholds)
            for name in ("report.html", "report.json"):
                write_bytes_atomic(folder / name, (Path(tmp) / name).read_bytes())
        return {"report_uri": str(folder / "report.html"), "report_drifted_columns": shown["drifted_columns"],
                "sampled": {"current_rows": len(current), "reference_rows": len(reference)}}

    def _commit(self, key: str, summary: dict[str, Any], current_versions: list[str], reference_version: str) -> None:
        from mlops_pack.core.storage import digest, write_json, write_manifest

        folder = self.storage.partition("reports/drift", key)
        write_json(folder / "summary.json", summary)
        # The report's identity is what it compares: the same predictions against the same reference.
        write_manifest(folder, {"uri": summary["report_uri"], "partition": key, "rows": summary["current_rows"],
                                "version": digest(*sorted(current_versions), reference_version,
                                                  str(self.spec.drift.share_threshold))})


def _data_file(folder, manifest: dict[str, Any]):
    return folder / str(manifest["uri"]).rsplit("/", 1)[-1]


def _data_files(folders: list, manifests: list[dict[str, Any]], columns: list[str]):
    """Each partition's data file, open for reading, once its Parquet schema is known to hold ``columns``."""
    import pyarrow.parquet as pq

    for folder, manifest in zip(folders, manifests, strict=True):
        with _data_file(folder, manifest).open("rb") as fh:
            names = pq.read_schema(fh).names
            missing = [c for c in columns if c not in names]
            if missing:
                raise ValueError(f"drift columns {missing} missing from {folder} (has {names})")
            fh.seek(0)
            yield fh


def _batches(folders: list, manifests: list[dict[str, Any]], columns: list[str], batch_size: int = 131_072):
    """Record batches of ``columns`` from each partition's data file, read as a stream."""
    import pyarrow.parquet as pq

    for folder, manifest in zip(folders, manifests, strict=True):
        with _data_file(folder, manifest).open("rb") as fh:
            parquet = pq.ParquetFile(fh)
            missing = [c for c in columns if c not in parquet.schema_arrow.names]
            if missing:
                raise ValueError(f"drift columns {missing} missing from {folder} (has {parquet.schema_arrow.names})")
            yield from parquet.iter_batches(batch_size=batch_size, columns=columns)


def sample_partitions(folders: list, manifests: list[dict[str, Any]], columns: list[str], rows: int):
    """About ``rows`` rows drawn uniformly from the partitions (Bernoulli per row, seeded), as pandas:
    memory is bounded by the sample, not by the partitions."""
    import numpy as np
    import pyarrow as pa

    total = sum(int(m.get("rows") or 0) for m in manifests)
    fraction, rng, parts = (1.0 if total <= rows else rows / total), np.random.default_rng(0), []
    for batch in _batches(folders, manifests, columns):
        parts.append(batch if fraction >= 1 else batch.filter(pa.array(rng.random(batch.num_rows) < fraction)))
    table = pa.Table.from_batches(parts) if parts else pa.table({c: [] for c in columns})
    return table.slice(0, rows).to_pandas()
