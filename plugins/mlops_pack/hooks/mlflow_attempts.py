"""Train-attempt hygiene in the MLflow registry and tracking store: what earlier tries of a train task
left behind (a version nobody judged, a run stuck RUNNING) is marked abandoned, never deleted.
core/attempts.py decides what; docs/promotion.md ("A train attempt that dies leaves no stray version")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops_pack.hooks.mlflow import VersionAbandoned

if TYPE_CHECKING:
    from mlops_pack.core.attempts import Attempt, Item, Stale
    from mlops_pack.hooks.mlflow import MlflowHook


def attempt_items(hook: MlflowHook, model_name: str, attempt: Attempt) -> list[Item]:
    """The model versions and MLflow runs (in experiment ``model_name``) tagged with ``attempt``'s dag run."""
    from mlflow.entities import ViewType

    from mlops_pack.core.attempts import RUN_ID, Item

    # A run id with a quote cannot go into a filter string: then every version/run is read and core decides.
    match = f"tags.`{RUN_ID}` = '{attempt.run_id}'" if "'" not in attempt.run_id else ""
    versions = hook.client.search_model_versions(" AND ".join(filter(None, [f"name = '{model_name}'", match])),
                                                 max_results=10000)
    items = [Item("version", str(v.version), dict(v.tags or {}), run_key=v.run_id or "") for v in versions]
    experiment = hook.client.get_experiment_by_name(model_name)
    if experiment is not None:
        runs = hook.client.search_runs([experiment.experiment_id], filter_string=match,
                                       run_view_type=ViewType.ALL, max_results=10000)
        items += [Item("run", r.info.run_id, dict(r.data.tags), status=r.info.status) for r in runs]
    return items


def abandon_stale_attempts(hook: MlflowHook, model_name: str, attempt: Attempt) -> list[Stale]:
    """Mark what earlier tries of ``attempt``'s task left behind (core/attempts.py decides what): tags
    ``attempt_status=abandoned`` with the reason and the superseding attempt, and a run still open ends
    KILLED. Nothing is deleted. Returns what was marked. When a *later* try already made a run or a
    version, ``attempt`` is an orphan: its own leftovers are marked and VersionAbandoned is raised."""
    from mlops_pack.core.attempts import stale_items, superseded_items, superseding_attempt

    items = attempt_items(hook, model_name, attempt)
    if not items:
        return []
    # MLflow 3's search_model_versions returns no aliases: read champion/previous from the model itself.
    state = hook.registry_state(model_name) if any(i.kind == "version" for i in items) else None
    protected = {v for v in (state.champion, state.previous) if v} if state else set()
    later = superseding_attempt(attempt, items)
    stale = stale_items(attempt, items, protected_versions=protected)
    if later is not None:
        stale += superseded_items(attempt, later, items, protected_versions=protected)
    _mark_abandoned(hook, model_name, stale)
    if later is not None:
        raise VersionAbandoned(f"{attempt.label()} is an orphan: {later.label()} of the same task already "
                               "made a run or a version; this try's leftovers are marked abandoned")
    return stale


def _mark_abandoned(hook: MlflowHook, model_name: str, stale: list[Stale]) -> None:
    for found in stale:
        if found.item.kind == "version":
            hook.tag_version(model_name, found.item.key, found.tags)
        else:
            for key, value in found.tags.items():
                hook.client.set_tag(found.item.key, key, value)
            if found.kill_run:
                hook.client.set_terminated(found.item.key, status="KILLED")
        hook.log.warning("Marked %s %s of %s abandoned: %s", found.item.kind, found.item.key, model_name,
                         found.tags["abandoned_reason"])
