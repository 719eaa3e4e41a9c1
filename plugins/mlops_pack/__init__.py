"""airflow-mlops-pack: operators, hooks and a DAG factory that close the ML retrain loop."""

from __future__ import annotations

__version__ = "0.1.0"
