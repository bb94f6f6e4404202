"""What a stored document may hold: the JSON values DynamoDB accepts, checked before any write.

DynamoDB refuses a map with an empty attribute name, a number with more than 38 significant
digits or outside 1e-130 ≤ |x| < 1e126 (besides 0), NaN and Infinity; a string must encode to
UTF-8, which a lone surrogate (`"\\ud800"`, valid JSON escape) does not. Tether refuses such a
value where it enters (the HTTP boundary, a job request's params) instead of failing the write
with a 500, and bounds nesting so no reader recurses without limit. Pure: values in, the first
problem (with where it is) out.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

MAX_DEPTH: Final = 32  # objects and arrays nested inside each other, the outermost counting 1
MAX_DIGITS: Final = 38
MIN_MAGNITUDE: Final = Decimal("1e-130")
MAX_MAGNITUDE: Final = Decimal("1e126")  # exclusive: DynamoDB's largest is 9.99…9e125
_MAX_INT: Final = 10**MAX_DIGITS

Location = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class DocumentProblem:
    """Why a value cannot be stored, and where: `loc` is the path of keys and indexes."""

    loc: Location
    kind: str  # a stable machine-readable name: "empty_key", "number_range", ...
    message: str

    def where(self) -> str:
        return ".".join('""' if part == "" else str(part) for part in self.loc) or "body"


def first_problem(value: object, loc: Location = ()) -> DocumentProblem | None:
    """The first thing in `value` DynamoDB could not store, or None when it all fits."""
    return next(_problems(value, loc, depth=0), None)


def _problems(value: object, loc: Location, depth: int) -> Iterator[DocumentProblem]:
    if isinstance(value, Mapping | list | tuple):
        if depth + 1 > MAX_DEPTH:
            yield DocumentProblem(loc, "too_deep", f"nested deeper than {MAX_DEPTH} levels")
            return
        yield from _container(value, loc, depth + 1)
    elif isinstance(value, str):
        if not _encodes(value):
            yield DocumentProblem(loc, "string_unicode", "contains a lone UTF-16 surrogate")
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float | Decimal):
        message = number_problem(value)
        if message is not None:
            yield DocumentProblem(loc, "number_range", message)


def _container(
    value: Mapping[object, object] | Sequence[object], loc: Location, depth: int
) -> Iterator[DocumentProblem]:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if not isinstance(key, str) or key == "":
                yield DocumentProblem((*loc, ""), "empty_key", "an object key is empty")
                return
            if not _encodes(key):
                yield DocumentProblem(loc, "string_unicode", "a key has a lone UTF-16 surrogate")
                return
            yield from _problems(inner, (*loc, key), depth)
    else:
        for index, inner in enumerate(value):
            yield from _problems(inner, (*loc, index), depth)


def number_problem(number: int | float | Decimal) -> str | None:
    """Why DynamoDB cannot hold `number`, or None when it can."""
    if isinstance(number, int):
        # Compared, not printed: str() of a huge int is slow and refused past 4300 digits.
        return None if abs(number) < _MAX_INT else f"has more than {MAX_DIGITS} digits"
    if isinstance(number, float):
        if not math.isfinite(number):
            return "is not a finite number"
        number = Decimal(repr(number))
    if not number.is_finite():
        return "is not a finite number"
    if number.is_zero():
        return None
    # as_tuple and copy_abs, not normalize and abs: those round to the context's 28 digits.
    # An integer literal keeps its trailing zeros (it becomes an int, stored digit by digit).
    _, written, exponent = number.as_tuple()
    text = "".join(map(str, written)).lstrip("0")
    digits = len(text if exponent == 0 else text.rstrip("0"))
    if digits > MAX_DIGITS:
        return f"has {digits} significant digits; at most {MAX_DIGITS} can be stored"
    magnitude = number.copy_abs()
    if magnitude >= MAX_MAGNITUDE:
        return "is too large: its magnitude must be below 1e126"
    if magnitude < MIN_MAGNITUDE:
        return "is too small: a non-zero magnitude must be at least 1e-130"
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
