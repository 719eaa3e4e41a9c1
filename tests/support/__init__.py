"""What the tests share: the test Airflow home, free ports, live services, waiting for a state, and the
demo spec. Importing these never changes the environment: tests/conftest.py activates the home once,
before anything imports Airflow (Airflow reads its configuration at import time)."""
