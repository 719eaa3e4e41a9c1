"""airflow DAGs of the ``listings`` pipeline, built from include/pipelines/listings.yaml.

One thin file per spec, so a broken spec shows as this file's import error and other pipelines load.
"""

from mlops_pack.dag_factory import build_dags, spec_file

globals().update(build_dags(spec_file("listings")))
