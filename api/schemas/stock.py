from datetime import datetime
from typing import Annotated, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from api.schemas.common import MAX_INT32, Id, Input, Text
from api.schemas.items import ITEM_EXAMPLE, ItemRead, Quantity
from models.enums import MovementReason

Note = Annotated[Text, Field(max_length=500, examples=["Order 1234"])]

MOVEMENT_EXAMPLE: JsonDict = {
    "id": 7,
    "item_id": 1,
    "delta": -3,
    "quantity_after": 37,
    "reason": "sold",
    "note": "Order 1234",
    "created_at": "2026-01-05T10:15:00Z",
    "user": {"id": 2, "username": "eddie"},
}


class StockAdjustment(Input):
    """A change of stock (`delta` and a reason other than `counted`), or a stock count
    (`quantity` and the reason `counted`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"delta": -3, "reason": "sold", "note": "Order 1234"},
                {"quantity": 36, "reason": "counted"},
            ]
        }
    )

    delta: int | None = Field(
        default=None,
        ge=-MAX_INT32,
        le=MAX_INT32,
        strict=True,
        description="Added to the quantity (negative: taken away); not 0",
    )
    quantity: Quantity | None = Field(default=None, description="A stock count: the new quantity")
    reason: MovementReason
    note: Note | None = None

    @model_validator(mode="after")
    def _delta_or_count(self) -> Self:
        if (self.delta is None) == (self.quantity is None):
            raise ValueError("send either delta or quantity (a count), not both")
        if self.delta == 0:
            raise ValueError("delta must not be 0")
        if self.quantity is not None and self.reason is not MovementReason.counted:
            raise ValueError("a count (quantity) has the reason counted")
        if self.delta is not None and self.reason is MovementReason.counted:
            raise ValueError("a count sends quantity, not delta")
        return self


class UserRef(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str


class MovementRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [MOVEMENT_EXAMPLE]})

    id: int
    item_id: int
    delta: int
    quantity_after: int
    reason: MovementReason
    note: str | None
    created_at: datetime
    user: UserRef | None


class AdjustOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"item": {**ITEM_EXAMPLE, "quantity": 37}, "movement": MOVEMENT_EXAMPLE}]
        }
    )

    item: ItemRead
    movement: MovementRead


class MovementList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"movements": [MOVEMENT_EXAMPLE], "total": 1, "skip": 0, "limit": 20}]
        }
    )

    movements: list[MovementRead]
    total: int
    skip: int
    limit: int


class ItemMovementQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    skip: int = Field(default=0, ge=0, le=MAX_INT32)
    limit: int = Field(default=20, ge=1, le=100)
    reason: MovementReason | None = None


class MovementQuery(ItemMovementQuery):
    item_id: Id | None = None
    user_id: Id | None = None
    since: AwareDatetime | None = Field(default=None, description="ISO 8601, with an offset")
    until: AwareDatetime | None = Field(default=None, description="ISO 8601, with an offset")
