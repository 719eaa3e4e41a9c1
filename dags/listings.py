"""airflow DAGs of the ``listings`` pipeline, built from its spec ``listings.yaml``.

One thin file per spec, so a broken spec shows as this file's import error and other pipelines load.
"""

from pathlib import Path

from mlops_pack.dag_factory import build_dags, spec_file

# ``[mlops] pipelines_dir`` decides (the native stack and the compose file point it at their own copy);
# where it holds no listings.yaml (an Airflow with default settings reading this checkout's dags/),
# this checkout's own spec.
SPEC = spec_file("listings")
if not SPEC.exists():
    SPEC = Path(__file__).resolve().parents[1] / "include" / "pipelines" / "listings.yaml"

globals().update(build_dags(SPEC))
