"""`inventory`: serve the API, migrate the database, manage users and move items in and out
as CSV. `inventory COMMAND --help` tells more about each command."""

import argparse
import logging
import os
import secrets
import sys
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from api.commands import items_csv
from api.commands import users as users_commands
from api.commands.common import (
    CommandError,
    add_command,
    database_location,
    read_password,
    require_database,
    role_argument,
    run_in_session,
    user_named,
    validation_message,
)
from api.errors import DomainError
from api.logs import configure_logging
from api.schemas.users import UserCreate, UserUpdate
from api.services import users
from api.settings import get_api_settings
from auth.secret import InsecureSecretKey, get_secret_key
from auth.settings import get_auth_settings
from models import migrations
from models.availability import DatabaseUnavailable
from models.enums import Role
from models.settings import get_database_settings
from models.user import User


def _database_message(exc: Exception) -> str:
    # The driver's own words: SQLAlchemy's message also shows the SQL and its parameters,
    # which can hold a password hash.
    message = str(exc.orig if isinstance(exc, DBAPIError) else exc).strip()
    message = message.splitlines()[0] if message else type(exc).__name__
    if "no such table" in message or ("relation" in message and "does not exist" in message):
        return f"{message} at {database_location()}; run `inventory migrate` first"
    return f"{message} at {database_location()}"


def migrate() -> None:
    with migrations.startup_lock():
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
        raise CommandError(f"FIRST_ADMIN_* settings: {validation_message(exc)}") from None

    async def work(db: AsyncSession) -> User | None:
        return await users.ensure_first_admin(db, data)

    admin = run_in_session(work)
    if admin is None:
        return
    print(f"created the first admin '{admin.username}'", end="")
    if configured:
        print(" with FIRST_ADMIN_PASSWORD")
    else:
        print(f" with the password: {password}\n(shown once; change it after logging in)")


def serve(args: argparse.Namespace) -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from api.listen import PortInUse, light_worker_start, listening_address, listening_path

    get_secret_key()  # fail before forking workers
    if not args.reload:
        # Taken first: a port already served fails at once, before touching any database.
        # Each worker listens on a socket of its own (api/listen.py), not on one they share.
        where = args.uds or f"{args.host}:{args.port}"
        try:
            address = (
                listening_path(args.uds) if args.uds else listening_address(args.host, args.port)
            )
        except PortInUse as exc:
            raise CommandError(f"cannot listen on {where}: {exc.strerror}") from None
        except OSError as exc:
            raise CommandError(f"cannot listen on {where}: {exc}") from None
    # Instances starting at once on one fresh database take turns (models/migrations.py).
    with migrations.startup_lock():
        migrations.upgrade()
        print("database is up to date")
        ensure_first_admin()
    workers = 1 if args.reload else args.workers
    # The workers share the cores: by default each hashes passwords on its share of them.
    os.environ.setdefault("HASH_CONCURRENCY", str(max(1, (os.cpu_count() or 1) // workers)))
    app = "api.app:create_served_app"
    options: dict[str, Any] = {
        "factory": True,
        "host": args.host,
        "port": args.port,
        "uds": args.uds,
        # uvloop, accepting every connection waiting at once (api/listen.py).
        "loop": "api.listen:new_event_loop",
        # httptools, with deadlines for slow clients and a connection cap (api/protocol.py).
        "http": "api.protocol:GuardedHttpToolsProtocol",
        "server_header": False,
        "proxy_headers": False,
        # api/request_log.py writes the access log; logging is set up by configure_logging.
        "access_log": False,
        "log_config": None,
    }
    if args.reload:
        uvicorn.run(app, reload=True, **options)
        return
    # A worker must answer the supervisor's health check within WORKER_HEALTHCHECK_TIMEOUT
    # seconds or it is killed and replaced (uvicorn's own 5 s could pass on a busy machine).
    config = uvicorn.Config(
        app,
        workers=workers,
        timeout_worker_healthcheck=get_api_settings().WORKER_HEALTHCHECK_TIMEOUT,
        **options,
    )
    host = f"[{args.host}]" if ":" in args.host else args.host
    port = None if args.uds else address.getsockname()[1]  # the one chosen for --port 0
    where = f"unix:{args.uds}" if args.uds else f"http://{host}:{port}"
    print(f"serving on {where}, workers: {workers}", flush=True)
    if workers > 1:
        with light_worker_start():
            Multiprocess(config, sockets=[address]).run()
        return
    server = uvicorn.Server(config)
    server.run(sockets=[address])
    if not server.started:
        raise CommandError("the server did not start (see the log above)")


def create_user(args: argparse.Namespace) -> None:
    password = read_password(f"Password for {args.username}: ")
    try:
        data = UserCreate(username=args.username, password=password, role=args.role)
    except ValidationError as exc:
        raise CommandError(validation_message(exc)) from None

    async def work(db: AsyncSession) -> User:
        return await users.create(db, data)

    user = run_in_session(work)
    print(f"created {user.role.value} '{user.username}' (id {user.id})")


def set_password(args: argparse.Namespace) -> None:
    password = read_password(f"New password for {args.username}: ")
    try:
        UserUpdate(password=password)
    except ValidationError as exc:
        raise CommandError(validation_message(exc)) from None

    async def work(db: AsyncSession) -> None:
        await users.set_password(db, await user_named(db, args.username), password)

    run_in_session(work)
    print(f"password of '{args.username}' changed; their logins were ended")


def prune_images(args: argparse.Namespace) -> None:
    # Imports kept here so the command is one self-contained block.
    from api import storage
    from api.services import images

    names = run_in_session(images.unreferenced_files)
    for name in names:
        if args.delete:
            storage.delete_file(name)
        print(f"{'removed' if args.delete else 'unreferenced'}: {name}")
    if args.delete:
        storage.forget_unremoved()  # each is removed now, or was gone already
    hint = "" if args.delete or not names else "; run with --delete to remove them"
    print(f"{len(names)} unreferenced file(s) in {storage.upload_dir()}{hint}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="inventory",
        description=__doc__,
        epilog="Settings come from the environment or .env (see .env.example).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = add_command(
        sub,
        "serve",
        "migrate, ensure the first admin, and serve the API",
        "Creates the first admin (FIRST_ADMIN_USERNAME) when there are no users; without\n"
        "FIRST_ADMIN_PASSWORD its password is generated and printed once.\n"
        "Logs one line per request (LOG_FORMAT=json for JSON lines).",
        run=serve,
    )
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    s.add_argument(
        "--uds", metavar="PATH", help="listen on this unix socket instead (behind nginx)"
    )
    s.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    s.add_argument("--reload", action="store_true", help="restart on code changes (development)")

    add_command(
        sub,
        "migrate",
        "apply the database migrations (DATABASE_URL or DATA_DIR)",
        run=lambda _args: migrate(),
    )

    c = add_command(
        sub,
        "create-user",
        "create a user; the password is prompted or read from standard input",
        "Example: echo 'a long password' | inventory create-user bob --role editor",
        run=create_user,
        username="3-50 letters, digits or ._@- (case does not matter)",
    )
    role_argument(
        c, "--role", default=Role.viewer.value, help="viewer, editor or admin (default: viewer)"
    )

    add_command(
        sub,
        "set-password",
        "set a user's password (recovers a lost admin)",
        "The password is prompted twice, or read from standard input. Every login of that\n"
        "user ends.",
        run=set_password,
        username="whose password to set",
    )

    i = add_command(
        sub,
        "prune-images",
        "report files in UPLOAD_DIR that no item references",
        "Lists the files in UPLOAD_DIR that no item references (from folders that\n"
        "predate the server-named uploads, or a crash); files younger than an hour are left\n"
        "alone. With --delete, removes them.",
        run=prune_images,
    )
    i.add_argument("--delete", action="store_true", help="remove the files listed")
    users_commands.register(sub)
    items_csv.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        for settings in (get_database_settings, get_auth_settings, get_api_settings):
            settings()
    except ValidationError as exc:
        # `LOG_LEVEL: Input should be …`: never the value, which may be a secret.
        message = validation_message(exc).replace("Value error, ", "")
        print(f"inventory: error: {message}", file=sys.stderr)
        return 2  # a usage error, as argparse's
    configure_logging()
    # A command reports an unreachable database in its one error line; the outage log
    # (models/availability.py) is for servers.
    outage_log = logging.getLogger("models.availability")
    outage_log.disabled = args.command != "serve"
    try:
        if args.command not in ("serve", "migrate"):
            require_database()
        args.run(args)
    except (CommandError, DomainError, InsecureSecretKey) as exc:
        print(f"inventory: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader of standard output went away (`inventory export - | head`): stop as
        # `cat` would, without a message, and without Python's own at exit.
        with suppress(OSError, ValueError):  # a stand-in stdout has no file descriptor
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a command the pipe ended
    except (SQLAlchemyError, OSError, DatabaseUnavailable) as exc:
        print(f"inventory: error: database: {_database_message(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        outage_log.disabled = False
    return 0


if __name__ == "__main__":
    sys.exit(main())
