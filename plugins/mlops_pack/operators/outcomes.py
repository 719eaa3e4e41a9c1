"""Realized performance of the scored predictions on the labels that arrived, and the decay signal."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowSkipException

from mlops_pack.operators.base import MlflowOperator, PipelineOperator

if TYPE_CHECKING:
    from airflow.sdk import Asset, Context

PERFORMANCE_AREA = "performance"
SUMMARY_FILE = "summary.json"
SIGNAL_STATE = "performance_signal.json"
ALERTS_STATE = "decay_alerts.json"


class RealizedPerformanceOperator(MlflowOperator):
    """Join prediction partitions with the label partitions by record key (core/outcomes.py) and keep
    each partition's realized metrics in ``performance/<prediction partition>/``.

    Works on the prediction partitions named by ``prediction_partitions``, else on every one whose
    record is older than its predictions or the labels (a record's identity is the predictions'
    version and the label partitions' versions, so a re-run with nothing new writes nothing). Each
    record (``summary.json``, committed by a manifest; ``_history/`` keeps the ones it replaced) holds
    the partition's model version, predicted and labelled rows, coverage, label lag, each metric with
    its bootstrap CI (or "not enough labels" below ``labels.min_labelled``), the version's
    promotion-time holdout value of each metric (the baseline, tag ``holdout_<metric>``) and the
    decay verdict per metric (``labels.decay``). Returns {champion, decayed, model_version, partition,
    decisions, records}: the verdict on the champion's newest judged partition.

    :param prediction_partitions: keys of prediction partitions to judge (templated); default: Params
        ``prediction_partitions``, else the stale ones.
    :param mlflow_conn_id: MLflow connection (default ``mlflow_default``).
    """

    template_fields = (*PipelineOperator.template_fields, "prediction_partitions")
    ui_color = "#fdf6e8"

    def __init__(self, *, prediction_partitions: list[str] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.prediction_partitions = prediction_partitions
        self._version_tags: dict[str, dict[str, str]] = {}  # one registry call per version judged

    def execute(self, context: Context) -> dict[str, Any]:
        import tempfile

        from mlops_pack.core.labels import LABEL, LABELLED_AT
        from mlops_pack.core.outcomes import PredictionSource, realized_performance
        from mlops_pack.core.storage import digest, list_partitions

        spec = self.spec
        if spec.labels is None:
            raise ValueError(f"{spec.name}: the spec has no labels section: nothing to measure predictions against")
        labels = list_partitions(self.storage.area("labels"))
        if not labels:
            raise AirflowSkipException(f"{spec.name} has no label partitions yet")
        labels_version = digest(*(f"{m['partition']}={m['version']}" for m in labels))
        todo = self._stale(context, labels_version)
        if not todo:
            raise AirflowSkipException("every prediction partition's realized performance is up to date")
        policy = spec.promotion
        with tempfile.TemporaryDirectory(prefix="outcomes-") as work_dir:
            report = realized_performance(
                [PredictionSource(m["partition"], self.storage.path(m["uri"]), _when(m.get("written_at")))
                 for m in todo],
                [self.storage.path(m["uri"]) for m in labels], key=spec.source.key, task=spec.model.task,
                metrics=spec.outcome_metrics, label_column=LABEL, label_time_column=LABELLED_AT,
                min_labelled=spec.labels.min_labelled, bootstrap_samples=policy.bootstrap_samples,
                confidence=policy.confidence, seed=policy.seed, work_dir=work_dir)
        if report.conflicts.keys:
            self.log.warning("%d keys have contradicting labels (e.g. %s); resolved by: %s", report.conflicts.keys,
                             list(report.conflicts.sample)[:5], report.conflicts.rule)
        by_key = {m["partition"]: m for m in todo}
        records = [self._record(group, digest(by_key[group.partition]["version"], labels_version), labels_version,
                                self._quality_report(group, by_key[group.partition], labels))
                   for group in report.groups]
        for version in sorted({str(r["model_version"]) for r in records}):  # each card lists realized performance
            self.refresh_model_card(version)
        return self._verdict(records)

    def _stale(self, context: Context, labels_version: str) -> list[dict[str, Any]]:
        """Prediction manifests to judge: the ones asked for, else those whose record is not of these
        predictions and these labels."""
        from mlops_pack.core.storage import digest, list_partitions

        predictions = {m["partition"]: m for m in list_partitions(self.storage.area("predictions"))}
        asked = self.prediction_partitions or (context.get("params") or {}).get("prediction_partitions")
        asked = [asked] if isinstance(asked, str) else list(asked or [])
        if asked:
            unknown = [k for k in asked if k not in predictions]
            if unknown:
                raise ValueError(f"no prediction partition {unknown}; have {list(predictions)[-10:]}")
            return [predictions[k] for k in asked]
        judged = {m["partition"]: m.get("version") for m in list_partitions(self.storage.area(PERFORMANCE_AREA))}
        return [m for k, m in predictions.items() if judged.get(k) != digest(m["version"], labels_version)]

    def _quality_report(self, group: Any, predictions: dict[str, Any], labels: list[dict[str, Any]],
                        ) -> dict[str, Any] | None:
        """Evidently's quality report of ``group``'s labelled predictions, from a sample of at most
        ``labels.report_sample_rows`` of them, in ``reports/quality/<prediction partition>/``; None
        without enough labels. Returns {uri, path (in the pipeline's storage), sampled_rows, metrics}."""
        import tempfile
        from pathlib import Path

        from mlops_pack.core.labels import LABEL, LABELLED_AT
        from mlops_pack.core.lineage import storage_dataset
        from mlops_pack.core.production_evidence import latest_labels
        from mlops_pack.core.quality_report import PREDICTION, labelled_sample, quality_report
        from mlops_pack.core.storage import read_partition, write_bytes_atomic
        from mlops_pack.operators.drift import sample_partitions

        if group.status != "ok":
            return None
        key, rows = self.spec.source.key, self.spec.labels.report_sample_rows
        # Sample the labelled rows: predictions are drawn at the share of them that is labelled.
        share = max(group.coverage, 1e-9)
        sample = sample_partitions([self.storage.path(predictions["folder"])], [predictions], [key, PREDICTION],
                                   min(int(rows / share) + 1, max(group.predicted_rows, 1)))
        wanted = set(sample[key].tolist())
        truth = latest_labels((frame[frame[key].isin(wanted)] for frame in (
            read_partition(self.storage.path(m["folder"]), columns=[key, LABEL, LABELLED_AT]) for m in labels)), key)
        frame = labelled_sample(sample, truth, key).head(rows)
        self.lineage.read(storage_dataset(predictions["folder"]), *(storage_dataset(m["folder"]) for m in labels))
        area = f"reports/quality/{group.partition}"
        folder = self.storage.partition("reports/quality", group.partition)
        with tempfile.TemporaryDirectory(prefix="quality-") as tmp:
            shown = quality_report(frame, self.spec.model.task, Path(tmp) / "report.html", Path(tmp) / "report.json")
            for name in ("report.html", "report.json"):
                write_bytes_atomic(folder / name, (Path(tmp) / name).read_bytes())
        self.lineage.wrote(storage_dataset(str(folder)))
        return {"uri": str(folder / "report.html"), "path": f"{area}/report.html", "sampled_rows": shown["rows"],
                "metrics": shown["metrics"]}

    def _record(self, group: Any, identity: str, labels_version: str, quality: dict[str, Any] | None,
                ) -> dict[str, Any]:
        """Judge ``group`` (one prediction partition and model version) for decay and commit its record."""
        from mlops_pack.core.lineage import storage_dataset
        from mlops_pack.core.storage import write_json, write_manifest

        tags = self._tags(group.model_version)
        decisions = self._decisions(group, tags)
        record = {**group.as_dict(), "model": self.spec.name, "labels_version": labels_version,
                  "quality_report": quality,
                  "baselines": {m: _baseline(tags, m) for m in self.spec.outcome_metrics},
                  "decay": [d.as_dict() for d in decisions], "decayed": any(d.decay for d in decisions),
                  "computed_at": dt.datetime.now(dt.UTC).isoformat()}
        folder = self.storage.partition(PERFORMANCE_AREA, group.partition)
        write_json(folder / SUMMARY_FILE, record)
        self.lineage.wrote(storage_dataset(str(folder)))
        self.lineage.facets.setdefault("decay", {})[group.partition] = {
            "model_version": group.model_version, "status": group.status, "decayed": record["decayed"]}
        write_manifest(folder, {
            "uri": str(folder / SUMMARY_FILE), "partition": group.partition, "rows": group.labelled_rows,
            "version": identity, "model_version": group.model_version, "status": group.status,
            "coverage": group.coverage, "decayed": record["decayed"], "baselines": record["baselines"],
            "metrics": {name: est.value for name, est in group.metrics.items()}})
        self.log.info("%s v%s on %s: %s, %d of %d rows labelled; metrics %s; decay: %s", self.spec.name,
                      group.model_version, group.partition, group.status, group.labelled_rows, group.predicted_rows,
                      {n: e.value for n, e in group.metrics.items()}, [d.reason for d in decisions])
        return record

    def _tags(self, version: str) -> dict[str, str]:
        if version not in self._version_tags:
            self._version_tags[version] = self.mlflow.version_tags(self.spec.name, version)
        return self._version_tags[version]

    def _decisions(self, group: Any, tags: dict[str, str]) -> list[Any]:
        """The decay verdict of each realized metric (``labels.decay``): a floor, or a drop from the
        baseline beyond ``max_relative_drop`` of it whose whole CI is on the worse side."""
        from mlops_pack.core.outcomes import decide_decay, metric_direction

        decay, out = self.spec.labels.decay, []
        for metric in self.spec.outcome_metrics:
            baseline = _baseline(tags, metric)
            floor = decay.floors.get(metric)
            higher = metric_direction(metric) == "higher"
            use_drop = decay.max_relative_drop is not None and baseline is not None
            out.append(decide_decay(
                metric, group, baseline=baseline if use_drop else None,
                min=floor if higher else None, max=None if higher else floor,
                min_drop=decay.max_relative_drop * abs(baseline) if use_drop else 0.0))
        return out

    def _verdict(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """The champion's verdict: its newest judged partition with enough labels."""
        champion = self.mlflow.alias_version(self.spec.name, "champion")
        judged = sorted((r for r in records if r["model_version"] == str(champion) and r["status"] == "ok"),
                        key=lambda r: r["partition"])
        summary = {"champion": champion, "records": [r["partition"] for r in records], "decayed": False,
                   "model_version": None, "partition": None, "decisions": []}
        if judged:
            newest = judged[-1]
            summary.update({"decayed": newest["decayed"], "model_version": newest["model_version"],
                            "partition": newest["partition"], "decisions": newest["decay"],
                            "quality_report_uri": (newest.get("quality_report") or {}).get("uri"),
                            "labelled_rows": newest["labelled_rows"], "coverage": newest["coverage"]})
        return summary


class SignalDecayOperator(PipelineOperator):
    """Emit the performance asset event (which retrains, with ``performance`` in retrain.triggers) when the
    champion has decayed, unless ``labels.cooldown_minutes`` holds (marker ``state/performance_signal.json``).
    The event's extra is the evidence: model version, prediction partition, each metric's realized value,
    CI, baseline and reason.

    :param verdict: the realized-performance task's return value (templated / XComArg).
    :param asset: the pipeline's performance asset (this task's outlet).
    """

    template_fields = (*PipelineOperator.template_fields, "verdict")

    def __init__(self, *, verdict: Any, asset: Asset, **kwargs: Any):
        super().__init__(outlets=[asset], **kwargs)
        self.verdict = verdict

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_pack.core.cooldown import claim

        verdict = self.verdict or {}
        if not verdict.get("decayed"):
            reasons = [d["reason"] for d in verdict.get("decisions") or []] or ["no judged partition of the champion"]
            raise AirflowSkipException(f"no decay of champion v{verdict.get('champion')}: {'; '.join(reasons)}")
        cooldown = self.spec.labels.cooldown_minutes
        claimed = claim(self.storage.state(SIGNAL_STATE), cooldown)
        decayed = [d for d in verdict["decisions"] if d["decay"]]
        self._alert(context, verdict, decayed, claimed)
        if not claimed:
            raise AirflowSkipException(f"decay within the {cooldown} min cooldown: no retrain")
        extra = {"model_version": verdict["model_version"], "partitions": [{"key": verdict["partition"]}],
                 "labelled_rows": verdict.get("labelled_rows"), "coverage": verdict.get("coverage"),
                 "evidence": decayed, "reason": "; ".join(d["reason"] for d in decayed)}
        self.emit(context, extra)
        self.log.warning("Decay of %s v%s on %s: %s: retrain signalled", self.spec.name, verdict["model_version"],
                         verdict["partition"], extra["reason"])
        return extra

    def _alert(self, context: Context, verdict: dict[str, Any], decayed: list[dict], retrain: bool) -> None:
        """One ``decay`` alert per model version and prediction partition (marker ``state/decay_alerts.json``):
        the same decay judged again as more labels arrive does not alert again."""
        from mlops_pack.core.cooldown import first_time
        from mlops_pack.links import storage_url
        from mlops_pack.notifications import send_alert

        seen = f"v{verdict['model_version']}@{verdict['partition']}"
        if not first_time(self.storage.state(ALERTS_STATE), seen):
            self.log.info("Decay of %s already alerted: no second alert", seen)
            return
        quality = verdict.get("quality_report_uri")
        report = (storage_url(str(quality), self) or quality) if quality else "none (not enough labels)"
        reason = "; ".join(d["reason"] for d in decayed)
        subject = f"[{self.spec.name}] decay: champion v{verdict['model_version']} on {verdict['partition']}"
        body = (f"Pipeline {self.spec.name}: the realized performance of champion v{verdict['model_version']} on "
                f"{verdict['partition']} ({verdict.get('labelled_rows')} labelled rows) has decayed: {reason}\n"
                f"{'Retrain signalled.' if retrain else 'Within the cooldown: no retrain.'}\nQuality report: {report}\n"
                f"Run: {context['run_id']}")
        send_alert(self.spec.alerts, "decay", subject, body,
                   {"pipeline": self.spec.name, "model_version": verdict["model_version"],
                    "partition": verdict["partition"], "reason": reason, "retrain": retrain, "report": report})


def _baseline(tags: dict[str, str], metric: str) -> float | None:
    from mlops_pack.core.outcomes import holdout_baseline

    return holdout_baseline(tags, metric)


def _when(stamp: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(stamp) if stamp else None
