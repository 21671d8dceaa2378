"""`inventory users list` and `inventory users disable USERNAME`."""

import argparse
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.commands.common import CommandError, SubParsers, add_command, run_in_session, user_named
from api.errors import Conflict
from api.schemas.users import UserUpdate
from api.services import users
from models.user import User


def register(sub: SubParsers) -> None:
    group = add_command(sub, "users", "list and disable users")
    commands = group.add_subparsers(dest="users_command", required=True, metavar="COMMAND")

    ls = add_command(
        commands,
        "list",
        "show every user as a table",
        "Columns: id, username, role, active, e-mail, name.",
    )
    ls.set_defaults(run=list_users)

    disable = add_command(
        commands,
        "disable",
        "disable a user and end all their logins",
        "Their tokens stop working at once and they cannot log in again until an admin\n"
        "re-enables them (PATCH /users/{id}). The last active admin cannot be disabled.",
    )
    disable.add_argument("username", help="who to disable (case does not matter)")
    disable.set_defaults(run=disable_user)


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def list_users(_args: argparse.Namespace) -> None:
    async def work(db: AsyncSession) -> Sequence[User]:
        return (await db.scalars(select(User).order_by(User.id))).all()

    rows = [
        [
            str(u.id),
            u.username,
            u.role.value,
            "yes" if u.is_active else "no",
            u.email or "",
            u.full_name or "",
        ]
        for u in run_in_session(work)
    ]
    if not rows:
        print("no users yet (`inventory serve` creates the first admin)")
        return
    print(table([["ID", "USERNAME", "ROLE", "ACTIVE", "EMAIL", "NAME"], *rows]))


def disable_user(args: argparse.Namespace) -> None:
    async def work(db: AsyncSession) -> bool:
        user = await user_named(db, args.username)
        if not user.is_active:
            return False
        try:
            await users.update(db, user, UserUpdate(is_active=False))
        except Conflict as exc:
            raise CommandError(f"cannot disable '{user.username}': {exc.detail.lower()}") from None
        return True

    if run_in_session(work):
        print(f"disabled '{args.username.lower()}'; their logins were ended")
    else:
        print(f"'{args.username.lower()}' was already disabled")
