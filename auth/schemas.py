from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict


class TokenPair(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.sig",
                    "token_type": "bearer",
                    "expires_in": 1800,
                    "refresh_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.sig",
                }
            ]
        }
    )

    access_token: str
    token_type: str = "bearer"  # noqa: S105  (the OAuth2 token type, not a secret)
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_token: str


_REFRESH_EXAMPLE: JsonDict = {"refresh_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.sig"}


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_REFRESH_EXAMPLE]})

    refresh_token: str = Field(min_length=1, max_length=4096)


class LogoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_REFRESH_EXAMPLE]})

    refresh_token: str | None = Field(default=None, min_length=1, max_length=4096)
