"""What a task of the pack read and wrote, as OpenLineage datasets (namespace, name), and the lineage graph
of a set of OpenLineage run events.

Names follow OpenLineage's dataset naming: a partition is its folder in the storage layer's namespace
(``file`` and the absolute path; ``s3://bucket`` and the key; likewise any ``scheme://bucket``); an MLflow
model version is ``<model>/versions/<n>`` in the namespace of the registry's URI (credentials, query and
fragment removed: an event must never carry a password); a scraped site is ``scheme://host[:port]`` and
its start path. operators' ``get_openlineage_facets_on_complete`` (mlops_pack/tasks.py) turns a
:class:`TaskLineage` into the provider's datasets and facets.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlsplit

# What each dataset of the loop is, by the storage area its folder is in (docs/storage.md).
AREA_KINDS = {"raw": "raw", "validated": "validated", "training": "training set", "predictions": "predictions",
              "reports/drift": "drift report", "reports/quality": "quality report", "labels": "labels", "quarantine": "quarantine",
              "performance": "performance", "promotions": "decisions"}


@dataclasses.dataclass(frozen=True)
class Dataset:
    namespace: str
    name: str
    kind: str  # raw, validated, training set, model version, predictions, drift report, source, ...


def _without_secrets(uri: str) -> str:
    parts = urlsplit(uri)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else uri


def storage_dataset(uri: str, kind: str | None = None) -> Dataset:
    """The dataset of a storage folder or file ``uri`` (``file:///...``, ``s3://bucket/...``, a bare path).
    ``kind`` defaults to the storage area the folder is in (``.../<pipeline>/<area>/<key>``)."""
    uri = str(uri).rstrip("/")
    parts = urlsplit(uri)
    if parts.scheme in ("", "file", "local"):
        namespace, name = "file", parts.path if parts.scheme else uri
    else:
        namespace, name = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}", parts.path.lstrip("/")
    if not name:
        raise ValueError(f"{uri!r} names no folder or file: a dataset needs a path")
    return Dataset(namespace, name, kind or area_kind(name))


def area_kind(name: str) -> str:
    """The kind of the storage folder ``name`` by the area it is in (``<area>/<key>``, ``training/<window>/
    train``, ``reports/drift/<key>``): the area nearest the end wins; ``file`` outside every area."""
    parts = name.rstrip("/").split("/")
    for i in range(len(parts) - 2, -1, -1):
        for area in ("/".join(parts[i - 1:i + 1]) if i else "", parts[i]):
            if area in AREA_KINDS:
                return "holdout set" if area == "training" and parts[-1] == "holdout" else AREA_KINDS[area]
    return "file"


def model_version_dataset(registry_uri: str, model: str, version: str | int) -> Dataset:
    """The dataset of MLflow model version ``version`` of ``model`` in the registry at ``registry_uri``."""
    if not str(version).isdigit():
        raise ValueError(f"model version {version!r} of {model!r} is not a version number")
    return Dataset(_without_secrets(registry_uri), f"{model}/versions/{int(version)}", "model version")


def source_dataset(url: str) -> Dataset:
    """The dataset of a web source read from ``url``: its site and the path the crawl starts at."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")
    return Dataset(f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}", parts.path or "/", "source")


@dataclasses.dataclass
class TaskLineage:
    """What one task run read and wrote, and its run facets (name -> small JSON object), in the order seen."""

    inputs: list[Dataset] = dataclasses.field(default_factory=list)
    outputs: list[Dataset] = dataclasses.field(default_factory=list)
    facets: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    derived: dict[Dataset, list[Dataset]] = dataclasses.field(default_factory=dict)

    def read(self, *datasets: Dataset) -> None:
        self.inputs.extend(d for d in datasets if d not in self.inputs)

    def wrote(self, *datasets: Dataset, derived_from: list[Dataset] | tuple = ()) -> None:
        """``datasets`` were written; each was made from ``derived_from`` (e.g. a model version from the
        training set it was fit on), which the event carries as dataset-level lineage of the output."""
        for dataset in datasets:
            if dataset not in self.outputs:
                self.outputs.append(dataset)
            if derived_from:
                self.derived.setdefault(dataset, []).extend(d for d in derived_from if d not in
                                                            self.derived.get(dataset, []))


def dataset_key(dataset: dict[str, Any]) -> tuple[str, str]:
    return dataset["namespace"], dataset["name"]


def lineage_graph(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The lineage graph of OpenLineage run events (as JSON): ``jobs`` (job name -> {inputs, outputs}, the
    union over its COMPLETE events), ``datasets`` ((namespace, name) -> kind, from the pack's ``mlopsPack``
    dataset facet), and ``edges``: (input, output) for every job's input and output, and (source, output)
    for an output's dataset-level lineage (``columnLineage.dataset``)."""
    jobs: dict[str, dict[str, set]] = {}
    kinds: dict[tuple[str, str], str] = {}
    edges: set[tuple[tuple[str, str], tuple[str, str]]] = set()
    for event in events:
        if event.get("eventType") != "COMPLETE":
            continue
        job = jobs.setdefault(event["job"]["name"], {"inputs": set(), "outputs": set()})
        for side in ("inputs", "outputs"):
            for dataset in event.get(side) or []:
                job[side].add(dataset_key(dataset))
                kind = ((dataset.get("facets") or {}).get("mlopsPack") or {}).get("kind")
                if kind:
                    kinds[dataset_key(dataset)] = kind
        outputs = event.get("outputs") or []
        edges.update((dataset_key(i), dataset_key(o)) for i in event.get("inputs") or [] for o in outputs)
        for output in outputs:
            lineage = ((output.get("facets") or {}).get("columnLineage") or {}).get("dataset") or []
            edges.update((dataset_key(source), dataset_key(output)) for source in lineage)
    return {"jobs": jobs, "datasets": kinds, "edges": edges}


def kind_path_exists(graph: dict[str, Any], kinds: list[str]) -> list[tuple[str, str]] | None:
    """One path of datasets through ``graph``'s edges whose kinds are ``kinds`` in order, or None."""
    of_kind = {k: [d for d, kind in graph["datasets"].items() if kind == k] for k in kinds}
    paths = [[d] for d in of_kind[kinds[0]]]
    for kind in kinds[1:]:
        paths = [[*p, d] for p in paths for d in of_kind[kind] if (p[-1], d) in graph["edges"]]
    return paths[0] if paths else None


def layout(graph: dict[str, Any]) -> tuple[dict[tuple, set], dict[int, list]]:
    """(successors, columns) of ``graph`` drawn left to right: nodes ``("d", dataset)`` and ``("j", job)`` (jobs
    that read or wrote nothing left out), a dataset before each job reading it, a job before what it wrote, a
    dataset before one made from it with no job between (``("d", a) -> ("d", b)``); column = longest path
    from a root (a cycle stops growing at the node count)."""
    jobs = {name: io for name, io in graph["jobs"].items() if io["inputs"] or io["outputs"]}
    succ: dict[tuple, set] = {}
    for name, io in jobs.items():
        for dataset in io["inputs"]:
            succ.setdefault(("d", dataset), set()).add(("j", name))
        succ.setdefault(("j", name), set()).update(("d", d) for d in io["outputs"])
    for source, target in graph["edges"]:
        if not any(source in io["inputs"] and target in io["outputs"] for io in jobs.values()):
            succ.setdefault(("d", source), set()).add(("d", target))
    nodes = set(succ) | {n for targets in succ.values() for n in targets}
    depth = dict.fromkeys(nodes, 0)
    changed = True
    while changed:
        changed = False
        for node, targets in succ.items():
            for target in targets:
                if depth[target] < depth[node] + 1 < len(nodes):
                    depth[target], changed = depth[node] + 1, True
    columns: dict[int, list] = {}
    for node in sorted(nodes, key=lambda n: (n[0], str(n[1]))):
        columns.setdefault(depth[node], []).append(node)
    return succ, dict(sorted(columns.items()))
