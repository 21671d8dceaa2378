import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

MAX_INT32 = 2**31 - 1

# C0, DEL and C1 (0x80-0x9f: NEL, and CSI that terminals read as an escape). One regex search
# per value, not a Python call per character (a CSV import checks millions of them).
# One-line fields: none of them, nor a line break that is not a C0 character.
_LINE_REFUSED = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Multi-line text: tabs and newlines allowed.
_TEXT_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


# Invisible characters that reorder or hide text (bidirectional overrides, isolates and marks,
# zero-width space and joiner-like marks): in a name they disguise what lists and logs show
# ("\u202eexe.txt" reads "txt.exe"). Zero-width (non-)joiners stay: emoji and some scripts
# need them.
_INVISIBLE = frozenset(
    "\u061c\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff"
)


def _no_control_chars(value: str) -> str:
    if _LINE_REFUSED.search(value):
        raise ValueError("must not contain control characters")
    if any(c in _INVISIBLE for c in value):
        raise ValueError("must not contain invisible or text-direction characters")
    return value


def _text_controls(value: str) -> str:
    if _TEXT_REFUSED.search(value):
        raise ValueError("must not contain control characters other than tab and newline")
    return value


def _not_blank(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


# One-line text: no control characters at all (NUL included), nothing invisible.
Line = Annotated[str, AfterValidator(_no_control_chars)]
# One-line text with something in it; surrounding spaces are trimmed.
Label = Annotated[str, AfterValidator(_no_control_chars), AfterValidator(_not_blank)]
# Multi-line text: tabs and newlines allowed. (Not `Text`: SQLAlchemy's type has that name.)
MultilineText = Annotated[str, AfterValidator(_text_controls)]

Id = Annotated[int, Field(ge=1, le=MAX_INT32)]

# Every list envelope's count (field descriptions in OpenAPI).
TOTAL = "How many match: exact up to 10,000, then 10,000 (see `total_exact`)"
TOTAL_EXACT = "False when there are more matches than `total` (10,000) says"


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def refuse_null(model: BaseModel, *fields: str) -> None:
    """Partial updates: a field that may be left out may still not be sent as null."""
    for field in fields:
        if field in model.model_fields_set and getattr(model, field) is None:
            raise ValueError(f"{field} may not be null")


class Input(BaseModel):
    """Request bodies: unknown fields are refused (no silent mass assignment)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        # JSON may escape half a surrogate pair ("\ud800"): not text, and no database or
        # hash function can encode it.
        if _has_lone_surrogate(data):
            raise ValueError("strings must be valid Unicode (no lone surrogates)")
        return data


class Message(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"message": "Item deleted"}]})

    message: str


class ErrorOut(BaseModel):
    detail: str

    model_config = ConfigDict(json_schema_extra={"examples": [{"detail": "Item not found"}]})


def error_responses(*errors: int | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer. A `(status, detail)` pair
    shows the route's own message as the example; a bare status gets its usual one
    (`api/openapi.py`)."""
    responses: dict[int | str, dict[str, Any]] = {}
    for error in errors:
        code, detail = error if isinstance(error, tuple) else (error, None)
        responses[code] = {"model": ErrorOut}
        if detail is not None:
            responses[code]["content"] = {"application/json": {"example": {"detail": detail}}}
    return responses
