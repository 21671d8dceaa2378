from typing import Annotated

from fastapi import APIRouter, Query

from api.schemas.audit import AuditList, AuditQuery
from api.services import audit
from auth.deps import AuditReader
from models.session import SessionDep

router = APIRouter(tags=["audit"])


@router.get("/audit", summary="The audit trail")
async def list_audit_events(
    _: AuditReader, db: SessionDep, query: Annotated[AuditQuery, Query()]
) -> AuditList:
    """Every write and authentication event, newest first. Read-only: no route changes or
    deletes an event."""
    return await audit.search(db, query)
