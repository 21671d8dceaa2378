"""`inventory`: serve, migrate, and recover accounts from the command line."""

import argparse
import asyncio
import getpass
import secrets
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import DomainError
from api.schemas.users import UserCreate, UserUpdate
from api.services import users
from auth.secret import InsecureSecretKey, get_secret_key
from auth.settings import get_auth_settings
from models import migrations
from models.engine import create_engine, create_sessionmaker
from models.enums import Role
from models.settings import get_database_settings
from models.user import User

T = TypeVar("T")


class CommandError(Exception):
    pass


def _run_in_session(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = create_engine(get_database_settings())
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _read_password(prompt: str) -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(prompt)
    if getpass.getpass("Repeat it: ") != first:
        raise CommandError("the two passwords differ")
    return first


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


def migrate() -> None:
    migrations.upgrade()
    print("database is up to date")


def ensure_first_admin() -> None:
    settings = get_auth_settings()
    configured = settings.FIRST_ADMIN_PASSWORD
    password = configured.get_secret_value() if configured else secrets.token_urlsafe(12)
    try:
        data = UserCreate(
            username=settings.FIRST_ADMIN_USERNAME, password=password, role=Role.admin
        )
    except ValidationError as exc:
        raise CommandError(f"FIRST_ADMIN_* settings: {_validation_message(exc)}") from None

    async def work(db: AsyncSession) -> User | None:
        return await users.ensure_first_admin(db, data.username, data.password)

    admin = _run_in_session(work)
    if admin is None:
        return
    print(f"created the first admin '{admin.username}'", end="")
    if configured:
        print(" with FIRST_ADMIN_PASSWORD")
    else:
        print(f" with the password: {password}\n(shown once; change it after logging in)")


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    get_secret_key()  # fail before forking workers
    migrate()
    ensure_first_admin()
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=None if args.reload else args.workers,
        reload=args.reload,
        server_header=False,
        proxy_headers=False,
        # One log line per request is the app's (its request-log middleware); uvicorn's own
        # would be a second copy, and costs ~5% of a read's time (py-spy).
        access_log=False,
    )


def create_user(args: argparse.Namespace) -> None:
    password = _read_password(f"Password for {args.username}: ")
    try:
        data = UserCreate(username=args.username, password=password, role=args.role)
    except ValidationError as exc:
        raise CommandError(_validation_message(exc)) from None

    async def work(db: AsyncSession) -> User:
        return await users.create(db, data)

    user = _run_in_session(work)
    print(f"created {user.role.value} '{user.username}' (id {user.id})")


def set_password(args: argparse.Namespace) -> None:
    password = _read_password(f"New password for {args.username}: ")
    try:
        UserUpdate(password=password)
    except ValidationError as exc:
        raise CommandError(_validation_message(exc)) from None

    async def work(db: AsyncSession) -> None:
        user = await db.scalar(select(User).where(User.username == args.username.lower()))
        if user is None:
            raise CommandError(f"no user named '{args.username}'")
        await users.set_password(db, user, password)

    _run_in_session(work)
    print(f"password of '{args.username}' changed; their logins were ended")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="inventory", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("serve", help="migrate, ensure the first admin, and serve the API")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    s.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    s.add_argument("--reload", action="store_true", help="restart on code changes (development)")
    s.set_defaults(run=serve)

    m = sub.add_parser("migrate", help="apply the database migrations")
    m.set_defaults(run=lambda _args: migrate())

    c = sub.add_parser(
        "create-user", help="create a user; the password is prompted or read from standard input"
    )
    c.add_argument("username")
    c.add_argument("--role", choices=[r.value for r in Role], default=Role.viewer.value)
    c.set_defaults(run=create_user)

    w = sub.add_parser("set-password", help="set a user's password (recovers a lost admin)")
    w.add_argument("username")
    w.set_defaults(run=set_password)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except (CommandError, DomainError, InsecureSecretKey) as exc:
        print(f"inventory: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
