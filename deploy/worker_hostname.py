"""``[core] hostname_callable`` for two Celery workers on one machine (deploy/stack.py).

Task instances record the host name of the worker that ran them. In containers each worker has its
own; processes on one machine share it, so each native worker names itself with
``MLOPS_WORKER_HOSTNAME``.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("MLOPS_WORKER_HOSTNAME") or socket.getfqdn()
