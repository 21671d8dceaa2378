"""Work that must follow the fate of a session's transaction: "on commit do X, otherwise do Y".

For side effects outside the database (files), registered while a request runs and carried
out once its transaction is over: the commit actions after a successful commit, the rollback
actions when the transaction ends any other way (rollback, a failed commit, a closed session).
Actions run synchronously inside SQLAlchemy's event, so they also run when the request was
cancelled; keep them quick (unlinking a file) and they must not raise.
"""

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger("models.transaction_hooks")

Action = Callable[[], None]

_ON_COMMIT = "transaction_hooks.on_commit"
_ON_ROLLBACK = "transaction_hooks.on_rollback"


def on_commit(session: AsyncSession | Session, action: Action) -> None:
    """Run `action` once the current transaction has committed (dropped if it does not)."""
    _actions(session, _ON_COMMIT).append(action)


def on_rollback(session: AsyncSession | Session, action: Action) -> None:
    """Run `action` if the current transaction ends without committing."""
    _actions(session, _ON_ROLLBACK).append(action)


def _actions(session: AsyncSession | Session, key: str) -> list[Action]:
    actions: list[Action] = session.info.setdefault(key, [])
    return actions


def _run(session: Session, run: str, drop: str) -> None:
    session.info.pop(drop, None)
    for action in session.info.pop(run, []):
        try:
            action()
        except Exception:
            # The transaction's outcome stands; a leftover file is what prune-images is for.
            log.exception("transaction hook %r failed", action)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    _run(session, _ON_COMMIT, _ON_ROLLBACK)


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    # After a commit the lists are already empty; anything left means "did not commit".
    if transaction.parent is None and not transaction.nested:
        _run(session, _ON_ROLLBACK, _ON_COMMIT)
