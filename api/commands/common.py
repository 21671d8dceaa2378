"""What every `inventory` command shares: one transaction per command, password prompts and
one-line error messages."""

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

from pydantic import ValidationError
from sqlalchemy import make_url, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.engine import create_engine, create_sessionmaker
from models.enums import Role
from models.settings import get_database_settings
from models.user import User

T = TypeVar("T")

# What `add_subparsers()` returns: each command module registers its commands on it.
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class CommandError(Exception):
    """Ends the command with `inventory: error: <message>` and exit status 1."""


def database_location() -> str:
    """Which database the commands use and the setting that chose it (for error messages)."""
    settings = get_database_settings()
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        where = str(Path(url.database or "").resolve())
    else:
        where = url.render_as_string(hide_password=True)
    chosen_by = "DATABASE_URL" if settings.DATABASE_URL else f"DATA_DIR={settings.DATA_DIR}"
    return f"{where} (set by {chosen_by})"


def require_database() -> None:
    """Commands other than `serve` and `migrate` use a database, never create one (SQLite
    would make an empty file wherever the command happens to run)."""
    url = make_url(get_database_settings().database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    if not Path(url.database).is_file():
        raise CommandError(
            f"no database at {database_location()}; point DATA_DIR or DATABASE_URL at the"
            " one `inventory serve` uses, or run `inventory migrate` to create it there"
        )


def run_in_session(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one transaction: committed if it returns, rolled back if it raises."""

    async def run() -> T:
        engine = create_engine(get_database_settings())
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def read_password(prompt: str) -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(prompt)
    if getpass.getpass("Repeat it: ") != first:
        raise CommandError("the two passwords differ")
    return first


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def validation_message(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


async def user_named(db: AsyncSession, username: str) -> User:
    user = await db.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise CommandError(f"no user named '{username}'")
    return user


def role_argument(parser: argparse.ArgumentParser, *names: str, **kwargs: Any) -> None:
    """A role argument that takes its name in any case (`--role Admin`)."""
    parser.add_argument(
        *names, type=str.lower, choices=[r.value for r in Role], metavar="ROLE", **kwargs
    )


def add_command(
    sub: SubParsers,
    name: str,
    summary: str,
    details: str = "",
    *,
    run: Callable[[argparse.Namespace], None] | None = None,
    username: str = "",
) -> argparse.ArgumentParser:
    """A subcommand whose `--help` says what it does (the summary also shows in the list),
    carried out by `run`; `username`, if given, is the help of its USERNAME argument."""
    command = sub.add_parser(
        name,
        help=summary,
        description=f"{summary[0].upper()}{summary[1:]}." + (f"\n\n{details}" if details else ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if username:
        command.add_argument("username", help=username)
    if run is not None:
        command.set_defaults(run=run)
    return command
