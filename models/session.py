"""The request's database session: one transaction per request, committed in one place."""

from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.engine import begin_write, use_autocommit

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class KeepChanges(Exception):
    """Mixed into an exception class: the request fails, yet what it flushed is committed.

    For writes that must outlive the refusal they cause: a login revoked because its
    refresh token was replayed, a failed login counted by the throttle.
    """


def _request_session(write_first: bool) -> Callable[[Request], AsyncIterator[AsyncSession]]:
    async def session_dependency(request: Request) -> AsyncIterator[AsyncSession]:
        factory: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
        async with factory() as session:
            if request.method in READ_METHODS:
                await use_autocommit(session)
            elif write_first:
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

    return session_dependency


# A write request's transaction is a writer's (on SQLite: BEGIN IMMEDIATE in the writer's turn)
# from its first statement on, except the caller's credentials check (BEFORE_WRITING) before it.
get_session = _request_session(write_first=True)
# For a write request that does slow work first (a password hash): it reads, then calls
# models.engine.begin_write before it writes.
get_read_first_session = _request_session(write_first=False)

# scope="function": the commit runs after the endpoint returns and before the response is
# sent, so a failed commit is never answered with success.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ReadFirstSessionDep = Annotated[AsyncSession, Depends(get_read_first_session, scope="function")]
