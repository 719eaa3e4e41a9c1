"""One error base: every exception class the pack defines derives from MlopsError (and keeps its
standard base), so a caller can tell what the pack diagnosed from what went wrong unexpectedly."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import mlops_pack
from mlops_pack.core.errors import MlopsError


def test_every_exception_the_pack_defines_is_an_mlops_error():
    defined = []
    for info in pkgutil.walk_packages(mlops_pack.__path__, "mlops_pack."):
        module = importlib.import_module(info.name)
        defined += [obj for _, obj in inspect.getmembers(module, inspect.isclass)
                    if issubclass(obj, BaseException) and obj.__module__ == info.name]
    assert len(defined) >= 15
    assert [c.__qualname__ for c in defined if not issubclass(c, MlopsError)] == []
