#!/bin/sh
# Run by the Dockerfile as the airflow user: install pinned requirements without dependency resolution.
#   install.sh -r requirements-runtime.lock       install.sh --build-constraints requirements-build.lock DIR
# In a virtualenv (the image built on a plain base): uv, pinned, from a throwaway location, caching in
# the build's cache mount. In the official image (packages in ~/.local, no venv): pip, as its docs say.
set -eu
UV_VERSION="${UV_VERSION:?}"
CACHE=/home/airflow/.cache
# The system trust store, as pip uses it (a site proxy's CA mounted over it at build time works too).
export UV_NATIVE_TLS=1
if python -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
    [ -x "$CACHE/uv-$UV_VERSION/bin/uv" ] || PIP_USER=false python -m pip install --quiet --disable-pip-version-check \
        --no-cache-dir --target "$CACHE/uv-$UV_VERSION" "uv==$UV_VERSION"
    exec "$CACHE/uv-$UV_VERSION/bin/uv" pip install --python "$(command -v python)" --no-deps \
        --cache-dir "$CACHE/uv" "$@"
fi
if [ "$1" = "--build-constraints" ]; then  # pip passes PIP_CONSTRAINT on to its isolated build environment
    PIP_CONSTRAINT="$2"; export PIP_CONSTRAINT; shift 2
fi
exec python -m pip install --disable-pip-version-check --cache-dir "$CACHE/pip" --no-deps "$@"
