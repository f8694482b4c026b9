"""A pgvector ``vector`` column, without importing pgvector or NumPy.

The models of an installed app are imported by ``django.setup()``, and the
project keeps NumPy (and so pgvector's Python package) out of start-up. Vectors
travel as pgvector's text form, ``[0.1,0.2,...]``, formatted with nine
significant digits: enough to give back every float32 exactly.
"""

from __future__ import annotations

import functools
import math
from array import array
from typing import Any

from django.db import models


@functools.lru_cache(maxsize=16)
def _format(dimensions: int) -> str:
    return "[" + ",".join(["%.9g"] * dimensions) + "]"


def to_text(vector: Any) -> str:
    """pgvector's text form of a vector given as float32 bytes (what the index
    code stores), a sequence of numbers (a list, a NumPy array) or text."""
    if isinstance(vector, str):
        return vector
    if isinstance(vector, bytes | bytearray | memoryview):
        values = tuple(array("f", bytes(vector)))
    elif hasattr(vector, "to_list"):  # pgvector.Vector
        values = tuple(map(float, vector.to_list()))
    else:
        values = tuple(map(float, vector))
    if not values:
        raise ValueError("A vector needs at least one dimension.")
    # NaN and infinities survive a sum (float32 values cannot overflow it).
    if not math.isfinite(sum(values)):
        raise ValueError("A vector cannot hold NaN or infinite values.")
    return _format(len(values)) % values


def from_text(text: str) -> list[float]:
    return [float(value) for value in text.strip("[] ").split(",")]


class VectorField(models.Field):
    """A ``vector`` column: any number of dimensions, values as ``list[float]``.

    Without fixed dimensions one table serves indexes made with different
    embedding models; the storage casts to ``vector(N)`` per index to use an
    HNSW index (see docs/pgvector.md).
    """

    description = "Vector (pgvector)"
    empty_strings_allowed = False

    def db_type(self, connection: Any) -> str:
        return "vector"

    def get_prep_value(self, value: Any) -> str | None:
        return None if value is None else to_text(value)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return self.to_python(value)

    def to_python(self, value: Any) -> list[float] | None:
        if value is None or isinstance(value, list):
            return value
        if isinstance(value, str):
            return from_text(value)
        if hasattr(value, "to_list"):  # pgvector's adapters are registered.
            return value.to_list()
        return [float(v) for v in value]

    def value_to_string(self, obj: Any) -> str:
        value = self.value_from_object(obj)
        return "" if value is None else to_text(value)
