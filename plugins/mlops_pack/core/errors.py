"""The base of every error the pack raises on purpose: ``except MlopsError`` catches what the pack
diagnosed (a bad spec, a refused address, a leaked holdout, a registry that is down...) and lets the
unexpected through. Each error keeps its standard base too (ValueError, RuntimeError, ...), so code that
caught those still does."""

from __future__ import annotations


class MlopsError(Exception):
    """An error the pack diagnosed, with a message naming the thing at fault."""
