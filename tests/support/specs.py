"""The demo spec, pointed at a test site, with textual edits."""

from __future__ import annotations

from pathlib import Path

from tests.support.env import REPO


def write_spec(folder: Path, site_url: str, name: str = "listings", **overrides: str) -> Path:
    """The demo spec pointed at ``site_url``, with textual overrides of its YAML."""
    text = (REPO / "include" / "pipelines" / "listings.yaml").read_text()
    text = text.replace("http://127.0.0.1:8765", site_url).replace("127.0.0.1:8765", site_url.split("//")[1])
    text = text.replace("../suites/", f"{REPO / 'include' / 'suites'}/").replace("name: listings", f"name: {name}")
    for old, new in overrides.items():
        assert old in text, old
        text = text.replace(old, new)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def write_dag_file(spec: Path, name: str | None = None) -> Path:
    """The thin DAG file of ``spec`` in the test home's DAGs folder: dag.test() runs DAGs of the
    dags-folder bundle, so a test pipeline needs one there."""
    from tests.support import env

    path = env.DAGS / f"{name or spec.stem}.py"
    path.write_text(f"# airflow dag file\nfrom mlops_pack.dag_factory import build_dags\n"
                    f"globals().update(build_dags({str(spec)!r}))\n")
    return path
