"""The web UI shows no plugin import error: the api-server registers the pack's plugin once.

Airflow's UI reads ``/api/v2/plugins/importErrors`` for its "Plugin Import Error" banner. A second
``airflow-mlops-pack`` distribution on sys.path (the ``*.egg-info`` a setuptools build left in
plugins/) made it load the ``airflow.plugins`` entry point twice: "Plugin 'mlops_pack' already
registered, skipping".
"""

from __future__ import annotations

import json

import pytest

from tests.ui.conftest import get

pytestmark = pytest.mark.e2e


def test_the_api_server_lists_the_plugin_once_and_no_import_error(ui_server):
    status, body, _ = get(f"{ui_server.base}/api/v2/plugins/importErrors", ui_server.token)
    assert status == 200, body[:300]
    assert json.loads(body) == {"import_errors": [], "total_entries": 0}

    status, body, _ = get(f"{ui_server.base}/api/v2/plugins", ui_server.token)
    assert status == 200, body[:300]
    plugins = [p for p in json.loads(body)["plugins"] if p["name"] == "mlops_pack"]
    assert len(plugins) == 1, plugins
    [plugin] = plugins
    assert "airflow-mlops-pack" in plugin["source"] and "EntryPoint" in plugin["source"]
    assert {(v["name"], v["destination"]) for v in plugin["external_views"]} == {("Model health", "nav"),
                                                                                ("Model health", "dag")}
