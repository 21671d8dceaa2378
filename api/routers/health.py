import asyncio

from fastapi import APIRouter, FastAPI, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

router = APIRouter(tags=["operations"])
UNAVAILABLE = "unavailable"

# /ready answers within this many seconds, whether or not the database does.
READY_SECONDS = 1.5


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
    """200 when the database answers within READY_SECONDS, else 503."""
    try:
        await asyncio.wait_for(asyncio.shield(_probe(request.app)), READY_SECONDS)
    except Exception:
        return JSONResponse({"status": UNAVAILABLE}, status.HTTP_503_SERVICE_UNAVAILABLE)
    return Status(status="ok")


def _probe(app: FastAPI) -> "asyncio.Task[None]":
    """One `SELECT 1` at a time, shared by the /ready calls that arrive meanwhile. It runs on
    when a caller stops waiting (cancelling a statement half-way would leave its connection to
    be cleaned up slowly); the database's own timeouts end it."""
    task: asyncio.Task[None] | None = getattr(app.state, "ready_probe", None)
    if task is None or task.done():
        task = app.state.ready_probe = asyncio.create_task(_select_one(app.state.engine))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved: no warning
    return task


async def _select_one(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
