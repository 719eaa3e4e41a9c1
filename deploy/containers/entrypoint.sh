#!/usr/bin/env bash
# /entrypoint of the image built on a plain base (the official image brings its own, which does more):
# the same command convention. `bash ...` and `python ...` run as given, `airflow ...` runs airflow,
# anything else is an airflow subcommand (`api-server`, `scheduler`, `celery worker ...`).
set -euo pipefail
case "${1:-}" in
    bash) shift; exec /bin/bash "$@" ;;
    python) shift; exec python "$@" ;;
    airflow) shift; exec airflow "$@" ;;
    "") exec airflow --help ;;
    *) exec airflow "$@" ;;
esac
