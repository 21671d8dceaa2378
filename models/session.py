"""The request's database session: one transaction per request, committed in one place."""

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.engine import begin_write, sqlite_writers

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class KeepChanges(Exception):
    """Mixed into an exception class: the request fails, yet what it flushed is committed.

    For writes that must outlive the refusal they cause: a login revoked because its
    refresh token was replayed, a failed login counted by the throttle.
    """


def _writer_turn(request: Request, write: bool) -> AbstractAsyncContextManager[Any]:
    writers = sqlite_writers(request.app.state.engine) if write else None
    return writers or nullcontext()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    factory: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    write = request.method not in READ_METHODS
    # The turn outlasts the session, so the transaction has ended before the next writer starts.
    async with _writer_turn(request, write), factory() as session:
        if write:
            await begin_write(session)
        try:
            yield session
        except KeepChanges:
            await session.commit()
            raise
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


# scope="function": the commit runs after the endpoint returns and before the response is
# sent, so a failed commit is never answered with success.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
