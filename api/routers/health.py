import asyncio

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

router = APIRouter(tags=["operations"])
UNAVAILABLE = "unavailable"


class Status(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: str


@router.get("/health", summary="Liveness: the process answers")
async def health() -> Status:
    """200 while the process can answer; it does not touch the database."""
    return Status(status="ok")


@router.get(
    "/ready",
    summary="Readiness: the database answers",
    response_model=Status,
    responses={
        503: {
            "model": Status,
            "description": "Database unreachable",
            "content": {"application/json": {"example": {"status": UNAVAILABLE}}},
        }
    },
)
async def ready(request: Request) -> Status | JSONResponse:
    """200 when the database answers a query within 3 seconds, else 503."""
    engine: AsyncEngine = request.app.state.engine
    try:
        async with asyncio.timeout(3), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        return JSONResponse({"status": UNAVAILABLE}, status.HTTP_503_SERVICE_UNAVAILABLE)
    return Status(status="ok")
