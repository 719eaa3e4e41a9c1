"""The pack's web UI: a FastAPI app mounted on Airflow's api-server (files over HTTP, model health page).

See docs/ui.md. Every route checks the caller's Airflow login (the UI's JWT) itself: Airflow does
not protect plugin apps.
"""
