"""JSON responses serialized once, in pydantic-core.

A route that returns a model has FastAPI dump it, validate the dump against the route's
`response_model` and serialize that: three passes over every field. The hot read routes
return `json_response(content)` instead (plain values, datetimes included, as pydantic
writes them) and name their model in `response_model=` for the schema.
"""

from collections.abc import Mapping
from typing import Any

from fastapi import Response
from pydantic_core import to_json


def json_response(
    content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(to_json(content), status_code, headers, media_type="application/json")
