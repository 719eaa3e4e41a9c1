"""The libraries the pack's tasks import at run time, imported once by a forkserver.

Every task process of a LocalExecutor is a fork of an executor worker. With Airflow's default start
method the workers are forks of the scheduler, which has none of these libraries, so each task imports
pandas, scikit-learn and MLflow (and validation Great Expectations, a drift report Evidently) afresh:
seconds of CPU a task, paid again by the next one. The embedded homes (``mlops-pack run``, the demo,
the tests) start the workers from a forkserver that imported this module first
(``[scheduler] mp_start_method = forkserver``, ``mp_forkserver_preload``, both Airflow 3.3 settings),
so a task starts with them loaded, copy-on-write. docs/deploy.md says how to do the same on a
LocalExecutor deployment.

Nothing here may start a thread, open a connection or read the pack's configuration: this runs in the
forkserver before any task, and whatever it holds is shared by every task forked after.
"""

from __future__ import annotations

import evidently  # noqa: F401  # drift and quality reports
import great_expectations  # noqa: F401  # validate
import mlflow  # noqa: F401
import mlflow.sklearn  # noqa: F401
import pandas  # noqa: F401
import pyarrow.parquet  # noqa: F401
import sklearn.compose  # noqa: F401
import sklearn.ensemble  # noqa: F401
import sklearn.linear_model  # noqa: F401
import sklearn.pipeline  # noqa: F401

import mlops_pack.dag_factory  # noqa: F401  # a task parses its DAG file: the spec models, every operator
import mlops_pack.tasks  # noqa: F401

