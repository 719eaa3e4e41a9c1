#!/usr/bin/env bash
# Makes this host able to build and run the containers with Debian's podman (no Docker engine needed):
# installs podman, podman-compose, debootstrap and runc when missing, and settles two things podman 4.3
# trips on here: default ulimits above the host's hard limits ("error setting rlimit type 7") and
# crun refusing hybrid cgroups (runc runs them). Idempotent; needs root and apt-get.
set -euo pipefail
missing=()
for tool in podman podman-compose debootstrap runc; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null || true
    apt-get install -y -q --no-install-recommends podman podman-compose debootstrap runc \
        netavark aardvark-dns uidmap fuse-overlayfs >/dev/null
fi
CONF=/etc/containers/containers.conf
mkdir -p /etc/containers
if ! grep -q '^# airflow-mlops-pack' "$CONF" 2>/dev/null; then
    [ -s "$CONF" ] && cp "$CONF" "$CONF.before-mlops-pack"
    {
        echo "# airflow-mlops-pack (deploy/containers/host-setup.sh)"
        echo "[containers]"
        echo "default_ulimits = []"
        echo "[engine]"
        echo 'runtime = "runc"'
    } >"$CONF"
fi
podman --version
