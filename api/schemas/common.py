from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

MAX_INT32 = 2**31 - 1

_ALLOWED_CONTROLS = frozenset("\t\n\r")


def _no_control_chars(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    return value


def _text_controls(value: str) -> str:
    if any((ord(c) < 32 and c not in _ALLOWED_CONTROLS) or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters other than tab and newline")
    return value


def _not_blank(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


# One-line text: no control characters at all (NUL included).
Line = Annotated[str, AfterValidator(_no_control_chars)]
# One-line text with something in it; surrounding spaces are trimmed.
Label = Annotated[str, AfterValidator(_no_control_chars), AfterValidator(_not_blank)]
# Multi-line text: tabs and newlines allowed.
Text = Annotated[str, AfterValidator(_text_controls)]

Id = Annotated[int, Field(ge=1, le=MAX_INT32)]


def refuse_null(model: BaseModel, *fields: str) -> None:
    """Partial updates: a field that may be left out may still not be sent as null."""
    for field in fields:
        if field in model.model_fields_set and getattr(model, field) is None:
            raise ValueError(f"{field} may not be null")


class Input(BaseModel):
    """Request bodies: unknown fields are refused (no silent mass assignment)."""

    model_config = ConfigDict(extra="forbid")


class Page(BaseModel):
    total: int
    skip: int
    limit: int


class Message(BaseModel):
    message: str


class ErrorOut(BaseModel):
    detail: str

    model_config = ConfigDict(json_schema_extra={"examples": [{"detail": "Item not found"}]})


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer."""
    return {code: {"model": ErrorOut} for code in codes}
