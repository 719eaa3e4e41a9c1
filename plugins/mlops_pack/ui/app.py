"""The pack's FastAPI app, mounted by the plugin at ``/mlops`` on Airflow's api-server.

Routes (each but the static assets needs an Airflow login, see :func:`caller`):

- ``GET /mlops/health``: the pipelines the caller may read; ``GET /mlops/health/<pipeline>``: its page.
- ``GET /mlops/files/<pipeline>/<path>``: a file (or folder listing) under the pipeline's
  ``reports/`` or ``quarantine/`` storage; nothing else, no ``..``, no escape through symlinks.
- ``GET /mlops/static/datadocs/<file>``: the scripts, styles, fonts and logo Data Docs pages load,
  vendored (ui/datadocs.py; Data Docs pages are served with their CDN URLs pointed here). The one
  route without a login: public library files only.
- ``GET /mlops/mlflow/runs/<experiment>/<run>`` and ``/mlops/mlflow/models/<model>/versions/<n>``:
  a redirect to that page of the MLflow UI configured now (extra links are stored with the task, so
  they carry no MLflow host or port that a move would break).

Airflow does not protect plugin apps: :func:`caller` validates the caller's token exactly as the
api-server's own routes do (``Authorization: Bearer`` or the UI's ``_token`` cookie, through the auth
manager and the shared ``[api_auth] jwt_secret``): none or expired -> 401 (a browser asking for a page:
a redirect to Airflow's login page), invalid -> 403; and a caller who may not read the pipeline's DAGs
gets 403. A caller without a login (no token, or anyone when Airflow runs without logins,
``simple_auth_manager_all_admins``) is served only in local mode (``[mlops] local_mode``) and only from
this machine (core/access.py).
"""

from __future__ import annotations

import mimetypes
import re
from html import escape
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mlops_pack import settings

NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")  # core.spec.NAME_PATTERN
MLFLOW_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")  # experiment and run ids, model versions: nothing else in a URL
SERVED_AREAS = ("reports", "quarantine")
DATADOCS_ASSETS = f"{settings.UI_PREFIX}/static/datadocs"  # the vendored CDN files of Data Docs pages
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
                    "Cache-Control": "no-store"}
# Pages made here have no script: nothing but their inline style may load.
PAGE_HEADERS = {**SECURITY_HEADERS, "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                "img-src data:; frame-ancestors 'self'"}
# Stored HTML (Evidently reports, Data Docs) runs its own scripts, but in a sandbox: an opaque origin
# with no access to the Airflow UI's cookies, storage or API, whatever a scraped value smuggled in.
STORED_HTML_HEADERS = {**SECURITY_HEADERS, "Content-Security-Policy": "sandbox allow-scripts allow-popups "
                       "allow-popups-to-escape-sandbox allow-downloads"}

# No /docs, /redoc or /openapi.json: FastAPI serves those without any login.
app = FastAPI(title="MLOps pack", description="Model health and pipeline files of airflow-mlops-pack",
              docs_url=None, redoc_url=None, openapi_url=None)


class LocalCaller:
    """A caller without an Airflow login, served in local mode (core/access.py ``anonymous_refusal``)."""

    name = "Anonymous (local mode)"


async def caller(request: Request) -> Any:
    """The Airflow user behind the request: 401 without a valid login (a browser asking for a page is sent to
    Airflow's login page instead), 403 for a bad token. A caller without a login (no token, or any caller of
    an Airflow that runs without logins) is served only in local mode, from this machine."""
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from airflow.api_fastapi.core_api.security import resolve_user_from_token

    from mlops_pack.core.access import anonymous_refusal

    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else request.cookies.get(COOKIE_NAME_JWT_TOKEN)
    # Without logins, Airflow's middleware gives every request its anonymous admin's token: nobody logged in.
    anonymous = not token or settings.login_disabled()
    if not anonymous:
        return await resolve_user_from_token(token)
    refusal = anonymous_refusal(local_mode=settings.local_mode(), client_host=request.client.host if request.client
                                else None)
    if refusal is None:
        return LocalCaller()
    if not settings.login_disabled() and "text/html" in request.headers.get("accept", ""):
        raise HTTPException(307, refusal, headers={"Location": _login_url(request)})
    raise HTTPException(401, refusal, headers={"WWW-Authenticate": "Bearer"})


def _login_url(request: Request) -> str:
    """Airflow's login page, coming back to the requested page."""
    from airflow.api_fastapi.app import get_auth_manager

    login = get_auth_manager().get_url_login(next_url=str(request.url))
    return login if "://" in login else settings.ui_base_path() + login


Caller = Annotated[Any, Depends(caller)]


def may_read(user: Any, pipeline: str) -> bool:
    """Can ``user`` read the pipeline's DAGs (``<pipeline>__train``, where its model is decided)? In local
    mode a caller without a login reads everything, as Airflow's anonymous admin does."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    if isinstance(user, LocalCaller):
        return True
    return bool(get_auth_manager().is_authorized_dag(method="GET", details=DagDetails(id=f"{pipeline}__train"),
                                                     user=user))


def _authorised(user: Any, pipeline: str) -> None:
    if not NAME.match(pipeline):
        raise HTTPException(404, "no such pipeline")
    if not may_read(user, pipeline):
        raise HTTPException(403, f"not allowed to read pipeline {pipeline}")


def pipeline_root(pipeline: str) -> Any:
    from mlops_pack.hooks.storage import PipelineStorageHook

    return PipelineStorageHook(pipeline, conn_id=settings.storage_conn_id()).root


def known_pipelines() -> list[str]:
    names = {p.stem for p in settings.pipelines_dir().glob("*.yaml")}
    try:
        from airflow.sdk import ObjectStoragePath

        root = ObjectStoragePath(settings.storage_root(), conn_id=settings.storage_conn_id())
        if root.exists():
            names |= {c.name for c in root.iterdir() if c.is_dir()}
    except OSError:
        pass
    return sorted(n for n in names if NAME.match(n))


@app.get("/health", response_class=HTMLResponse)
def health_index(user: Caller) -> HTMLResponse:
    from mlops_pack.ui.health import render_index

    readable = [p for p in known_pipelines() if may_read(user, p)]
    return HTMLResponse(render_index(readable), headers=PAGE_HEADERS)


@app.get("/health/{pipeline}", response_class=HTMLResponse)
def health_page(pipeline: str, user: Caller) -> HTMLResponse:
    from mlops_pack.ui.health import gather, render

    _authorised(user, pipeline)
    return HTMLResponse(render(gather(pipeline, pipeline_root(pipeline))), headers=PAGE_HEADERS)


def safe_parts(path: str) -> list[str]:
    """The segments of a requested path, refused (404) unless plainly inside a served area."""
    parts = path.split("/")
    if parts and parts[-1] == "":
        parts = parts[:-1]  # a trailing slash: the folder itself
    bad = (not parts or parts[0] not in SERVED_AREAS
           or any(p in ("", ".", "..") or "\\" in p or "\x00" in p or ":" in p for p in parts))
    if bad:
        raise HTTPException(404, "not found")
    return parts


def _contained(root: Any, area: str, target: Any) -> bool:
    """On local storage, does ``target`` resolve (symlinks followed) inside the served ``area`` of the
    pipeline folder ``root``, itself the real folder of that name? Containment in the pipeline folder
    would not do: a link in reports/ to ../state would serve state/, validated/ and promotions/."""
    if getattr(root, "protocol", "file") not in ("file", "local", ""):
        return True  # object stores have no symlinks; the segments were checked
    from pathlib import Path

    base = Path(root.path).resolve() / area
    if Path(root.path, area).resolve() != base:
        return False  # the area itself is a link to somewhere else
    found = Path(target.path).resolve()
    return found == base or base in found.parents


@app.get("/files/{pipeline}/{path:path}")
def pipeline_file(pipeline: str, path: str, user: Caller) -> Response:
    _authorised(user, pipeline)
    parts = safe_parts(path)
    root = pipeline_root(pipeline)
    target = root.joinpath(*parts)
    if not _contained(root, parts[0], target) or not target.exists():
        raise HTTPException(404, "not found")
    if target.is_dir():
        return HTMLResponse(_listing(pipeline, parts, target), headers=PAGE_HEADERS)
    media = mimetypes.guess_type(parts[-1])[0] or "application/octet-stream"
    headers = dict(STORED_HTML_HEADERS if media in ("text/html", "image/svg+xml") else SECURITY_HEADERS)
    if not media.startswith(("text/", "application/json", "image/")):
        headers["Content-Disposition"] = f'attachment; filename="{parts[-1]}"'
    content = target.read_bytes()
    if parts[:2] == ["reports", "datadocs"] and media == "text/html":  # CDN assets from here: works offline
        from mlops_pack.ui.datadocs import offline

        content = offline(content.decode("utf-8", "replace"), settings.ui_base_path() + DATADOCS_ASSETS).encode()
    return Response(content, media_type=media, headers=headers)


def _listing(pipeline: str, parts: list[str], folder: Any) -> str:
    base = f"{settings.UI_PREFIX}/files/{pipeline}/{'/'.join(parts)}"
    items = "".join(f'<li><a href="{escape(base)}/{escape(c.name)}{"/" if c.is_dir() else ""}">{escape(c.name)}</a>'
                    "</li>" for c in sorted(folder.iterdir(), key=lambda c: c.name) if not c.name.startswith("."))
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{escape(pipeline)}: {escape('/'.join(parts))}"
            f"</title></head><body><h1>{escape(pipeline)} / {escape('/'.join(parts))}</h1><ul>{items}</ul></body></html>")


@app.get("/static/datadocs/{path:path}")
def datadocs_asset(path: str) -> Response:
    """A vendored script, stylesheet, font or image of the Data Docs pages (ui/datadocs.py): public
    library files, the same for everyone, so no login; anything not vendored is 404. Pages served
    sandboxed have an opaque origin: fonts and ``crossorigin`` scripts need the CORS header."""
    from mlops_pack.ui.datadocs import asset

    found = asset(path)
    if found is None:
        raise HTTPException(404, "not found")
    media = mimetypes.guess_type(found.name)[0] or ("font/woff2" if found.suffix == ".woff2" else "text/plain")
    return Response(found.read_bytes(), media_type=media,
                    headers={"X-Content-Type-Options": "nosniff", "Access-Control-Allow-Origin": "*",
                             "Cache-Control": "public, max-age=86400"})


@app.get("/health/dag/{dag_id}", response_class=HTMLResponse)
def health_of_dag(dag_id: str, user: Caller) -> HTMLResponse:
    """The health page of the pipeline a ``<pipeline>__<stage>`` DAG belongs to (the DAG page's tab)."""
    return health_page(dag_id.split("__", 1)[0], user)


def _mlflow_ui() -> str:
    from mlops_pack.hooks.mlflow import MlflowHook

    return MlflowHook().ui_url()


@app.get("/mlflow/runs/{experiment_id}/{run_id}")
def mlflow_run(experiment_id: str, run_id: str, user: Caller) -> RedirectResponse:
    if not (MLFLOW_ID.match(experiment_id) and MLFLOW_ID.match(run_id)):
        raise HTTPException(404, "not found")
    return RedirectResponse(f"{_mlflow_ui()}/#/experiments/{experiment_id}/runs/{run_id}", status_code=307,
                            headers=SECURITY_HEADERS)


@app.get("/mlflow/models/{model}/versions/{version}")
def mlflow_model_version(model: str, version: str, user: Caller) -> RedirectResponse:
    _authorised(user, model)  # a model is named after its pipeline
    if not MLFLOW_ID.match(version):
        raise HTTPException(404, "not found")
    return RedirectResponse(f"{_mlflow_ui()}/#/models/{model}/versions/{version}", status_code=307,
                            headers=SECURITY_HEADERS)
