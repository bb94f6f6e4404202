"""The HTTP API's input rules for request bodies, checked once before any route sees a body.

Every route with a body takes one JSON object and nothing else: `application/json` (UTF-8;
anything else is 415), at most `max_body_bytes` (413), valid UTF-8 JSON without NaN/Infinity
or lone surrogates (400), a JSON object (not an array or a scalar) whose values DynamoDB can
store: no empty keys, numbers within its range, nesting at most `documents.MAX_DEPTH` deep (422
naming the field). The answer is problem+json (`shared.api.problems`); the routes' own models
check the fields after this.

The parser is the standard library's, with hooks: numbers arrive as the `Decimal` of the digits
the client wrote (judged exactly, and a 5,000-digit integer costs no int conversion), NaN and
Infinity are refused, and nesting is bounded by the interpreter's recursion limit (a
RecursionError, answered as too deep) before `documents.MAX_DEPTH` bounds it for real.
pydantic-core's parser was the other candidate: it refuses valid JSON it cannot represent (a
5,000-digit number) as malformed and rounds every decimal to a float.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from decimal import Decimal
from http import HTTPStatus
from typing import Any, Final

from shared.api.problems import Problem, problem, problem_for
from shared.domain.documents import MAX_DEPTH, DocumentProblem, first_problem
from shared.domain.errors import PayloadTooLarge

JSON_MEDIA_TYPE: Final = "application/json"
_UTF8: Final = frozenset({"utf-8", "utf8"})


def refuse_body(
    headers: Mapping[str, str], body: str | None, *, base64_encoded: bool, max_bytes: int
) -> Problem | None:
    """Why this request's body is refused, or None when it may reach the routes."""
    try:
        raw = _bytes(body, base64_encoded=base64_encoded)
    except binascii.Error:
        return _malformed("the body is not valid base64, as its encoding flag says")
    if len(raw) > max_bytes:
        return problem_for(PayloadTooLarge(len(raw), max_bytes))
    if not raw:
        return None  # routes that need a body say so themselves (422 naming it)
    content_type = {name.lower(): value for name, value in headers.items()}.get("content-type")
    if not _is_json(content_type):
        return problem(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            f"the body must be {JSON_MEDIA_TYPE} (UTF-8), not {content_type or 'untyped'}",
        )
    return _document_problem(raw)


def _bytes(body: str | None, *, base64_encoded: bool) -> bytes:
    if not body:
        return b""
    if base64_encoded:
        return base64.b64decode(body, validate=True)
    # surrogatepass: a lone surrogate in the event's string must fail the UTF-8 check below,
    # not raise here.
    return body.encode("utf-8", "surrogatepass")


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return False
    media, *parameters = (part.strip().lower() for part in content_type.split(";"))
    charsets = [p.partition("=")[2].strip('"') for p in parameters if p.startswith("charset=")]
    return media == JSON_MEDIA_TYPE and all(charset in _UTF8 for charset in charsets)


def _document_problem(raw: bytes) -> Problem | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _malformed(f"the body is not valid UTF-8 (byte {exc.start})")
    try:
        document = json.loads(
            text, parse_float=Decimal, parse_int=Decimal, parse_constant=_not_json
        )
    except RecursionError:
        return _invalid(DocumentProblem((), "too_deep", f"nested deeper than {MAX_DEPTH} levels"))
    except ValueError as exc:
        return _malformed(f"the body is not valid JSON: {exc}")
    if not isinstance(document, dict):
        kind = "an array" if isinstance(document, list) else "a JSON scalar"
        return _invalid(DocumentProblem((), "object_type", f"must be a JSON object, not {kind}"))
    found = first_problem(document)
    return None if found is None else _invalid(found)


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def _malformed(detail: str) -> Problem:
    return problem(HTTPStatus.BAD_REQUEST, "malformed_json", detail, title="Malformed body")


def _invalid(found: DocumentProblem) -> Problem:
    loc: list[Any] = ["body", *found.loc]
    where = f"body.{found.where()}" if found.loc else "body"
    return problem(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "validation_failed",
        f"{where}: {found.message}",
        title="Invalid request",
        errors=[{"loc": loc, "type": found.kind, "message": found.message}],
    )
