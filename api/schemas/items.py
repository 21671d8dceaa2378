from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator
from pydantic.config import JsonDict

from api.schemas.common import (
    MAX_INT32,
    TOTAL,
    TOTAL_EXACT,
    Input,
    Label,
    Line,
    MultilineText,
    refuse_null,
)

Name = Annotated[Label, Field(min_length=1, max_length=200, examples=["Hex bolt M8"])]
Quantity = Annotated[int, Field(ge=0, le=MAX_INT32, strict=True, examples=[40])]
Description = Annotated[MultilineText, Field(max_length=2000, examples=["Zinc plated, 40 mm"])]
Sku = Annotated[Label, Field(min_length=1, max_length=64, examples=["BOLT-M8-40"])]
ReorderLevel = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_INT32,
        strict=True,
        examples=[10],
        description="At or below it the item is low on stock; null: no alert",
    ),
]

# Shown in /docs and in generated clients.
ITEM_EXAMPLE: JsonDict = {
    "id": 1,
    "name": "Hex bolt M8",
    "quantity": 40,
    "description": "Zinc plated, 40 mm",
    "sku": "BOLT-M8-40",
    "image_src": None,
    "image_url": None,
    "reorder_level": 10,
    "low_stock": False,
    "created_at": "2026-01-05T09:30:00Z",
    "updated_at": "2026-01-05T09:30:00Z",
    "version": 1,
}


class ItemCreate(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "Hex bolt M8", "quantity": 40, "sku": "BOLT-M8-40", "reorder_level": 10},
            ]
        }
    )

    name: Name
    quantity: Quantity
    description: Description | None = None
    sku: Sku | None = None
    reorder_level: ReorderLevel | None = None


class ItemUpdate(Input):
    """Only the fields sent change; `description`, `sku` and `reorder_level` may be null to
    clear them. A new `quantity` is recorded as a `correction` movement."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"quantity": 38}]})

    name: Name | None = None
    quantity: Quantity | None = None
    description: Description | None = None
    sku: Sku | None = None
    reorder_level: ReorderLevel | None = None

    @model_validator(mode="after")
    def _required_not_null(self) -> Self:
        refuse_null(self, "name", "quantity")
        return self


class ItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [ITEM_EXAMPLE]})

    id: int
    name: str
    quantity: int
    description: str | None
    sku: str | None
    image_src: str | None
    reorder_level: int | None
    created_at: datetime
    updated_at: datetime
    version: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def image_url(self) -> str | None:
        return image_url(self.image_src)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def low_stock(self) -> bool:
        """`reorder_level` is set and `quantity` is at or below it."""
        return low_stock(self.quantity, self.reorder_level)


def image_url(image_src: str | None) -> str | None:
    return f"/static/{image_src}" if image_src else None


def low_stock(quantity: int, reorder_level: int | None) -> bool:
    return reorder_level is not None and quantity <= reorder_level


_READ_FIELDS = tuple(ItemRead.model_fields)


def item_json(row: Mapping[Any, Any]) -> dict[str, Any]:
    """What `ItemRead` serializes to, from a row the database gave (no validation: it is
    the database's own; pydantic's validation of 20 rows costs more than reading them).
    tests/test_item_json.py holds the two equal."""
    values = {name: row[name] for name in _READ_FIELDS}
    values["image_url"] = image_url(values["image_src"])
    values["low_stock"] = low_stock(values["quantity"], values["reorder_level"])
    return values


class ItemOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"item": ITEM_EXAMPLE}]})

    item: ItemRead


class ItemList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"items": [ITEM_EXAMPLE], "total": 1, "total_exact": True, "skip": 0, "limit": 20}
            ]
        }
    )

    items: list[ItemRead]
    total: int = Field(description=TOTAL)
    total_exact: bool = Field(description=TOTAL_EXACT)
    skip: int
    limit: int


class ItemSort(StrEnum):
    id = "id"
    id_desc = "-id"
    name = "name"
    name_desc = "-name"
    quantity = "quantity"
    quantity_desc = "-quantity"
    created_at = "created_at"
    created_at_desc = "-created_at"
    updated_at = "updated_at"
    updated_at_desc = "-updated_at"


class ItemQuery(BaseModel):
    # Unknown query parameters (a client's cache buster) are ignored; unknown body fields are not.
    model_config = ConfigDict(extra="ignore")

    skip: int = Field(default=0, ge=0, le=MAX_INT32)
    limit: int = Field(default=20, ge=1, le=100)
    q: Line | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Case-insensitive match anywhere in name or sku (`%` and `_` are literal); "
        "a term of 1 or 2 characters reads every item",
    )
    sort: ItemSort = ItemSort.id
    min_quantity: int | None = Field(default=None, ge=0, le=MAX_INT32)
    max_quantity: int | None = Field(default=None, ge=0, le=MAX_INT32)
    sku: Line | None = Field(
        default=None, min_length=1, max_length=64, description="Exact match on the whole sku"
    )
    low_stock: bool | None = Field(
        default=None,
        description="true: only items at or below their reorder level; false: the others",
    )

    @model_validator(mode="after")
    def _range(self) -> Self:
        if (
            self.min_quantity is not None
            and self.max_quantity is not None
            and self.min_quantity > self.max_quantity
        ):
            raise ValueError("min_quantity must not exceed max_quantity")
        return self
