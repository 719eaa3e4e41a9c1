"""What every part of the spec shares: the strict model base, the name rule and the one error."""

from __future__ import annotations

from pydantic import (
    BaseModel,
    ConfigDict,
)

from mlops_pack.core.errors import MlopsError

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,40}$"


class SpecError(MlopsError, ValueError):
    """A pipeline spec is invalid; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
