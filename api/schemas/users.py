from datetime import datetime
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator
from pydantic.config import JsonDict

from api.schemas.common import Input, Label, Line, refuse_null
from auth.passwords import MAX_PASSWORD_LENGTH
from models.enums import Role

Username = Annotated[
    str,
    Field(
        min_length=3,
        max_length=50,
        pattern=r"^[A-Za-z0-9._@-]+$",
        examples=["alice"],
        description="3–50 letters, digits or ._@-; case does not matter",
    ),
]
Password = Annotated[
    str,
    Field(min_length=8, max_length=MAX_PASSWORD_LENGTH, examples=["correct horse battery"]),
]
FullName = Annotated[Label, Field(min_length=1, max_length=200, examples=["Alice Smith"])]

# Shown in /docs and in generated clients.
USER_EXAMPLE: JsonDict = {
    "id": 2,
    "username": "alice",
    "email": "alice@example.com",
    "full_name": "Alice Smith",
    "role": "editor",
    "is_active": True,
    "created_at": "2026-01-05T09:30:00Z",
    "updated_at": "2026-01-05T09:30:00Z",
}


def _examples(*examples: JsonDict) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [USER_EXAMPLE]})

    id: int
    username: str
    email: str | None
    full_name: str | None
    role: Role
    is_active: bool
    created_at: datetime
    updated_at: datetime


class UserOut(BaseModel):
    model_config = _examples({"user": USER_EXAMPLE})

    user: UserRead


class UserList(BaseModel):
    model_config = _examples(
        {"users": [USER_EXAMPLE], "total": 1, "total_exact": True, "skip": 0, "limit": 20}
    )

    users: list[UserRead]
    total: int
    total_exact: bool = Field(description="Always true: users are counted exactly")
    skip: int
    limit: int


class UserCreate(Input):
    model_config = _examples(
        {"username": "alice", "password": "correct horse battery", "role": "editor"}
    )

    username: Username
    password: Password
    role: Role = Role.viewer
    email: EmailStr | None = None
    full_name: FullName | None = None


class ProfileUpdate(Input):
    model_config = _examples({"full_name": "Alice Smith", "email": "alice@example.com"})

    email: EmailStr | None = None
    full_name: FullName | None = None


class UserUpdate(ProfileUpdate):
    """Only the fields sent change; `email` and `full_name` may be null to clear them."""

    model_config = _examples({"role": "viewer"}, {"is_active": False})

    role: Role | None = None
    is_active: bool | None = Field(default=None, strict=True)
    password: Password | None = None

    @model_validator(mode="after")
    def _required_not_null(self) -> Self:
        refuse_null(self, "role", "is_active", "password")
        return self


class PasswordChange(Input):
    model_config = _examples(
        {"current_password": "correct horse battery", "new_password": "battery staple horse"}
    )

    current_password: Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)]
    new_password: Password


class UserQuery(BaseModel):
    # Unknown query parameters (a client's cache buster) are ignored; unknown body fields are not.
    model_config = ConfigDict(extra="ignore")

    skip: int = Field(default=0, ge=0, le=2**31 - 1)
    limit: int = Field(default=20, ge=1, le=100)
    role: Role | None = None
    is_active: bool | None = None
    q: Line | None = Field(
        default=None,
        min_length=1,
        max_length=254,
        description="Case-insensitive match on username, e-mail or name",
    )
