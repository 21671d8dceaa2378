from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from api.schemas.common import MAX_INT32, Id, Line
from api.schemas.stock import UserRef

EVENT_EXAMPLE: JsonDict = {
    "id": 12,
    "at": "2026-01-05T10:15:00Z",
    "action": "item.update",
    "actor": {"id": 2, "username": "eddie"},
    "target_type": "item",
    "target_id": 1,
    "address": "192.0.2.10",
    "request_id": "5f0c3d8e9a1b4c2d8e7f6a5b4c3d2e1f",
    "changes": {"quantity": {"old": 40, "new": 38}},
}


class AuditEventRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EVENT_EXAMPLE]})

    id: int
    at: datetime
    action: str
    actor: UserRef | None
    target_type: str | None
    target_id: int | None
    address: str | None
    request_id: str | None
    changes: dict[str, Any]


class AuditList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"events": [EVENT_EXAMPLE], "total": 1, "skip": 0, "limit": 20}]
        }
    )

    events: list[AuditEventRead]
    total: int
    skip: int
    limit: int


class AuditQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    skip: int = Field(default=0, ge=0, le=MAX_INT32)
    limit: int = Field(default=20, ge=1, le=100)
    action: Line | None = Field(default=None, max_length=40, examples=["item.adjust"])
    actor_id: Id | None = None
    target_type: Line | None = Field(default=None, max_length=20, examples=["item"])
    target_id: Id | None = None
    since: AwareDatetime | None = Field(default=None, description="ISO 8601, with an offset")
    until: AwareDatetime | None = Field(default=None, description="ISO 8601, with an offset")
