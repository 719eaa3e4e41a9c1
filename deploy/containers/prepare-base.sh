#!/bin/sh
# Run by the Dockerfile as root. The official apache/airflow image already has all of this: leave it alone.
# On a plain Debian + Python 3.11 base: what the official image provides that the pack's services use.
set -eu
if [ -x /entrypoint ] && id airflow >/dev/null 2>&1; then
    echo "prepare-base: official Airflow image, nothing to do"
    exit 0
fi
python3 -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
    || { echo "prepare-base: the base image needs Python 3.11 (the locks were resolved for it)" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
rm -f /etc/apt/apt.conf.d/docker-clean  # keep downloaded packages in the build's cache mount
apt-get update -q
# curl: the compose health checks; dumb-init: the official image's PID 1; libgomp1: scikit-learn's threads.
apt-get install -y -q --no-install-recommends python3-venv ca-certificates curl dumb-init libgomp1 procps
# The official image's user: uid 50000, primary group 0 (root), home /home/airflow, packages in ~/.local.
useradd --uid "${AIRFLOW_UID:-50000}" --gid 0 --home-dir /home/airflow --create-home --shell /bin/bash airflow
python3 -m venv /home/airflow/.local
mkdir -p /opt/airflow/logs /opt/airflow/dags /opt/airflow/plugins /opt/mlops /home/airflow/.cache
chown -R airflow:0 /home/airflow /opt/airflow /opt/mlops
chmod -R g+rwX /opt/airflow
install -m 0755 /opt/mlops/bin/entrypoint.sh /entrypoint
