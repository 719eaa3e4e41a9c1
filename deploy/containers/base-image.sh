#!/usr/bin/env bash
# A plain Debian 12 + Python 3.11 base image made from Debian's packages, for sites that cannot pull
# registry images (docs/deploy.md, "Air-gapped"). Reuses the image when podman already has it.
#   deploy/containers/base-image.sh [TAG]      (default localhost/mlops-base:bookworm-py311)
# Needs root, debootstrap and podman; MIRROR (default http://deb.debian.org/debian) may be a local mirror.
set -euo pipefail
TAG="${1:-localhost/mlops-base:bookworm-py311}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
ENGINE="${CONTAINER_ENGINE:-podman}"

if "$ENGINE" image exists "$TAG" 2>/dev/null; then
    echo "base image $TAG present"
    exit 0
fi
ROOTFS="$(mktemp -d /var/tmp/mlops-base.XXXXXX)"
trap 'rm -rf "$ROOTFS"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$ROOTFS" "$MIRROR"
# The rootfs keeps no apt lists or downloaded packages; images built on it run apt-get update first.
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/archives/*.deb
tar -C "$ROOTFS" -c . | "$ENGINE" import --change 'CMD ["/bin/bash"]' - "$TAG"
echo "base image $TAG built"
