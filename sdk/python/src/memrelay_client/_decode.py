"""Decoders from an answer's ``data`` to typed models (used by the resource builders)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


def one(model: type[M]) -> Callable[[Any], M]:
    return model.model_validate


def listed(model: type[M], key: str) -> Callable[[Any], list[M]]:
    """``data[key]`` (or ``data`` itself when it is already a list) as a list of ``model``."""

    def decode(data: Any) -> list[M]:
        return [model.model_validate(item) for item in (data if isinstance(data, list) else data[key])]

    return decode


def strings(key: str) -> Callable[[Any], list[str]]:
    """``data[key]`` as a list of strings."""

    def decode(data: Any) -> list[str]:
        return [str(item) for item in data[key]]

    return decode


def as_dict(data: Any) -> dict[str, Any]:
    """The answer as a plain dict (for answers without a model)."""
    return dict(data)
