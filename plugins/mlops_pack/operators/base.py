"""The pack's one operator family: ``PipelineOperator``, ``MlflowOperator`` and ``RegistryOperator``
(judging, the promotion lock, decision records), built on the task base every task of the pack shares
(``mlops_pack.tasks.PipelineTaskMixin``: spec, storage, data key, asset events; see there when the spec
is read)."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from mlops_pack.core.errors import MlopsError
from mlops_pack.tasks import PipelineTaskMixin, check_spec_path

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlops_pack.hooks.mlflow import MlflowHook
    from mlops_pack.promotion_service import PromotionService


class PipelineOperator(PipelineTaskMixin, BaseOperator):
    """Base of the pack's operators: each works on one pipeline spec.

    :param spec_path: path of the pipeline spec YAML (templated).
    :param storage_root: override of ``[mlops] storage_root`` (templated).
    """

    template_fields = ("spec_path", "storage_root")

    def __init__(self, *, spec_path: str, storage_root: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.spec_path = check_spec_path(spec_path)
        self.storage_root = storage_root


class MlflowOperator(PipelineOperator):
    """A pipeline operator that talks to MLflow (tracking or registry).

    :param mlflow_conn_id: MLflow connection (default ``mlflow_default``).
    """

    def __init__(self, *, mlflow_conn_id: str = "mlflow_default", **kwargs: Any):
        super().__init__(**kwargs)
        self.mlflow_conn_id = mlflow_conn_id

    @cached_property
    def mlflow(self) -> MlflowHook:
        from mlops_pack.hooks.mlflow import MlflowHook

        return MlflowHook(self.mlflow_conn_id)

    def version_dataset(self, version: str | int) -> Any:
        """The lineage dataset (core/lineage.py) of this pipeline's model version ``version``."""
        from mlops_pack.core.lineage import model_version_dataset

        return model_version_dataset(self.mlflow.connection.registry_uri, self.spec.name, version)

    def refresh_model_card(self, version: str | None) -> str | None:
        """Write ``version``'s model card now (:func:`write_model_card`); None when there is no version."""
        if version in (None, "", "None"):
            return None
        return write_model_card(self.mlflow, self.storage, self.spec, str(version), self.log)


def write_model_card(mlflow: MlflowHook, storage: Any, spec: Any, version: str, log: Any) -> str | None:
    """Write ``version``'s model card (core/model_card.py) to ``reports/model_cards/v<version>/`` of the pipeline's
    ``storage`` and log it to the version's MLflow run; returns the card's storage folder. The card only gathers
    what is already recorded: a failure to write it is logged and never fails the task (or command) that brought
    new evidence; the next evidence writes it again."""
    import datetime as dt

    from mlflow.exceptions import MlflowException

    from mlops_pack.core.model_card import assemble, card_folder, gather_evidence, render_html
    from mlops_pack.core.storage import StorageError, write_bytes_atomic, write_json
    from mlops_pack.hooks.mlflow import RegistryError
    from mlops_pack.links import files_path

    name, folder = spec.name, card_folder(version)
    try:
        sources = mlflow.model_card_sources(name, version)
        card = assemble(pipeline=name, version=version, evidence=gather_evidence(storage.root, version),
                        slices=list(spec.promotion.slices), updated_at=dt.datetime.now(dt.UTC).isoformat(), **sources)
        html = render_html(card)
        write_json(storage.root / folder / "card.json", card)
        write_bytes_atomic(storage.root / folder / "card.html", html.encode())
        mlflow.log_model_card(name, version, sources["run_id"], card, html, files_path(f"{name}/{folder}/card.html"))
    except (RegistryError, MlflowException, StorageError, OSError) as exc:
        log.warning("Could not write the model card of %s v%s: %s", name, version, exc)
        return None
    log.info("Model card of %s v%s: %s", name, version, storage.root / folder / "card.html")
    return str(storage.root / folder)


class ChampionMoved(AirflowFailException, MlopsError):
    """The champion changed after the decision was taken (and approved); judging must start again."""


class AbandonedVersion(AirflowFailException, MlopsError):
    """The version was made by a train attempt a later attempt superseded: it is never judged or promoted."""


def refuse_abandoned(model: str, version: str, tags: dict[str, str]) -> None:
    """AbandonedVersion, naming ``version`` and what superseded it, when its tags mark it abandoned."""
    from mlops_pack.core.attempts import promotion_refusal

    refusal = promotion_refusal(model, version, tags)
    if refusal:
        raise AbandonedVersion(refusal)


class RegistryOperator(MlflowOperator):
    """An MLflow operator that judges versions and, through the promotion service
    (promotion_service.py), moves aliases under the promotion lock, recording every decision in storage
    and in the registry (docs/promotion.md has the lock protocol).

    :param lock_wait_seconds: how long to wait for the promotion lock.
    :param lock_lease_seconds: lease of the lock while held (renewed by a heartbeat); a dead holder's
        lock is reclaimable after one lease.
    """

    def __init__(self, *, lock_wait_seconds: float = 300, lock_lease_seconds: float = 36, **kwargs: Any):
        super().__init__(**kwargs)
        if lock_lease_seconds < 3 or lock_wait_seconds < 0:
            raise ValueError(f"lock_lease_seconds must be >= 3 and lock_wait_seconds >= 0, got "
                             f"{lock_lease_seconds} and {lock_wait_seconds}")
        self.lock_wait_seconds, self.lock_lease_seconds = lock_wait_seconds, lock_lease_seconds

    def evaluate(self, version: str, champion: str | None) -> dict[str, Any]:
        """The gate's verdict on ``version`` vs ``champion`` on ``version``'s holdout, cleaned of every row
        either model trained on (core/holdout.py); the verdict's ``holdout`` says what was used and removed."""
        import numpy as np

        from mlops_pack.core.lineage import storage_dataset
        from mlops_pack.core.metrics import METRICS, predictions_of
        from mlops_pack.core.promotion.gate import judge
        from mlops_pack.core.search import search_record
        from mlops_pack.core.storage import read_partition

        name, model = self.spec.name, self.spec.model
        tags = self.mlflow.version_tags(name, version)
        refuse_abandoned(name, version, tags)
        if "holdout_uri" not in tags:
            raise ValueError(f"{name} version {version} has no holdout_uri tag: was it trained by this pack?")
        holdout = read_partition(self.storage.path(tags["holdout_uri"]).parent)
        rival = champion if champion not in (None, version) else None
        clean = self._clean_holdout(version, tags, rival, holdout)
        holdout = holdout[clean.keep].reset_index(drop=True)
        x, y = holdout[model.features.all], holdout[model.target].to_numpy()
        # Each metric gets what it needs: class probabilities for roc_auc/log_loss (core/metrics.py).
        needs_proba = any(METRICS[m].needs == "proba" for m in self.spec.promotion.metrics)
        challenger, previous = np.empty(0), None  # no row left: the gate refuses without predicting
        if len(holdout):
            challenger = predictions_of(self.mlflow.load_model(name, version), x, model.task, needs_proba)
            if rival is not None:
                previous = predictions_of(self.mlflow.load_model(name, rival), x, model.task, needs_proba)
        result = judge(y, challenger, previous, self.spec.promotion,
                       slices=holdout[self.spec.promotion.slices] if self.spec.promotion.slices else None,
                       holdout=clean)
        self.log.info("Gate holdout of %s v%s: %s", name, version, clean.describe())
        verdict = result.as_dict()
        if self.spec.promotion.production_evidence is not None and rival is not None:
            from mlops_pack.core.production_evidence import with_evidence

            verdict = with_evidence(verdict, self._production_evidence(version, tags, rival))
        self.lineage.read(self.version_dataset(version), *([self.version_dataset(rival)] if rival else []),
                          storage_dataset(str(self.storage.path(tags["holdout_uri"]).parent)))
        self.lineage.facets["gate"] = {"model": name, "version": version, "champion_evaluated": champion,
                                       "decision": verdict["decision"], "reason": verdict["reason"][:4000],
                                       "challenger_metrics": verdict.get("challenger_metrics"),
                                       "champion_metrics": verdict.get("champion_metrics")}
        # What made the train run train (input drift, decay, ...), so the decision record names its evidence.
        # ... and the search it came from, if any (the health page shows the params that won).
        return {**verdict, "model": name, "version": version, "champion_evaluated": champion,
                "retrain_evidence": tags.get("retrain_evidence") or None, "search": search_record(tags)}

    def _production_evidence(self, version: str, tags: dict[str, str], champion: str) -> Any:
        """The challenger ``version`` against ``champion`` on the labelled production rows both scored: the
        prediction partitions of ``champion`` shadow-scored by ``version``, joined with the label partitions
        (core/production_evidence.py), without the rows either model trained on."""
        import pyarrow.parquet as pq

        from mlops_pack.core.labels import LABEL, LABELLED_AT
        from mlops_pack.core.metrics import METRICS
        from mlops_pack.core.production_evidence import judge_production, latest_labels, paired_rows
        from mlops_pack.core.storage import list_partitions, read_partition

        spec, key = self.spec, self.spec.source.key
        needs_proba = any(METRICS[m].needs == "proba" for m in spec.promotion.metrics)
        shadowed = [m for m in list_partitions(self.storage.area("predictions"))
                    if str(m.get("model_version")) == str(champion) and str(m.get("shadow_model_version")) == version]
        labels = latest_labels([read_partition(self.storage.path(m["folder"]), columns=[key, LABEL, LABELLED_AT])
                                for m in list_partitions(self.storage.area("labels"))], key)

        def frames():
            for m in shadowed:
                with self.storage.path(m["uri"]).open("rb") as fh:
                    reader = pq.ParquetFile(fh)
                    wanted = [c for c in reader.schema_arrow.names if c == key or c.startswith(
                        ("prediction", "shadow_prediction") + (("proba_", "shadow_proba_") if needs_proba else ()))]
                    yield m["partition"], reader.read(columns=wanted).to_pandas()

        rows = paired_rows(frames(), labels, key, spec.model.task, needs_proba,
                           trained=self._trained_keys(version, tags, champion))
        evidence = judge_production(rows, spec.promotion, spec.promotion.production_evidence.min_rows,
                                    challenger_version=version, champion_version=str(champion))
        self.log.info("Production evidence for %s v%s vs champion v%s: %s", spec.name, version, champion,
                      evidence.reason)
        return evidence

    def _clean_holdout(self, version: str, tags: dict[str, str], champion: str | None, holdout) -> Any:
        """Which rows of ``version``'s holdout neither it nor ``champion`` trained on, by the spec's record
        key. Each model's training keys come from its ``train_uri`` tag (the training set it was fit on,
        written by the train task); a champion whose training set cannot be read is named in ``unknown``
        (the gate then refuses), the challenger's is an error: it was trained by this pack just before."""
        from mlops_pack.core.holdout import clean_holdout

        name, key = self.spec.name, self.spec.source.key
        if "train_uri" not in tags or key not in holdout.columns:
            raise ValueError(f"{name} version {version} has no train_uri tag or its holdout no {key!r} column: "
                             "the gate cannot check that the holdout is unseen data")
        return clean_holdout(holdout[key], key, *self._trained_keys(version, tags, champion))

    def _trained_keys(self, version: str, tags: dict[str, str], champion: str | None) -> tuple[dict, dict]:
        """(model label -> the record keys it trained on, model label -> why they cannot be read) of the
        challenger ``version`` (tags ``tags``) and ``champion``."""
        from mlops_pack.core.storage import StorageError, read_partition

        name, key = self.spec.name, self.spec.source.key
        trained_on = {f"challenger v{version}": read_partition(self.storage.path(tags["train_uri"]).parent,
                                                               columns=[key])[key]}
        unknown = {}
        if champion is not None:
            label, uri = f"champion v{champion}", self.mlflow.version_tags(name, champion).get("train_uri")
            try:
                if not uri:
                    raise StorageError("no train_uri tag (not trained by this pack?)")
                trained_on[label] = read_partition(self.storage.path(uri).parent, columns=[key])[key]
            except (StorageError, KeyError, ValueError) as exc:
                unknown[label] = f"its training rows cannot be read: {exc}"
        return trained_on, unknown

    def promotion(self, context: Context) -> PromotionService:
        """The promotion service (lock, repair, fenced moves, records) for this task run."""
        from mlops_pack.promotion_service import PromotionService

        return PromotionService(self.mlflow, self.storage.area("promotions"), self.spec.name,
                                dag_id=context["dag"].dag_id, run_id=context["run_id"], log=self.log,
                                facets=self.lineage.facets, wait_seconds=self.lock_wait_seconds,
                                lease_seconds=self.lock_lease_seconds)
