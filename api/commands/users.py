"""`inventory users list|enable|disable|set-role|delete`."""

import argparse
from collections.abc import Callable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.commands.common import (
    CommandError,
    SubParsers,
    add_command,
    role_argument,
    run_in_session,
    user_named,
)
from api.errors import Conflict
from api.schemas.users import UserUpdate
from api.services import users
from models.enums import Role
from models.user import User


def register(sub: SubParsers) -> None:
    group = add_command(sub, "users", "list, enable, disable, change the role of, or delete users")
    commands = group.add_subparsers(dest="users_command", required=True, metavar="COMMAND")

    add_command(
        commands,
        "list",
        "show every user as a table",
        "Columns: id, username, role, active, e-mail, name.",
        run=list_users,
    )
    add_command(
        commands,
        "disable",
        "disable a user and end all their logins",
        "Their tokens stop working at once and they cannot log in again until an admin\n"
        "re-enables them (PATCH /users/{id}). The last active admin cannot be disabled.",
        run=disable_user,
        username="who to disable (case does not matter)",
    )
    add_command(
        commands,
        "enable",
        "let a disabled user log in again",
        run=enable_user,
        username="who to enable (case does not matter)",
    )
    set_role = add_command(
        commands,
        "set-role",
        "change what a user may do",
        "Takes effect on their next request. The last active admin cannot be demoted.",
        run=set_user_role,
        username="whose role to change (case does not matter)",
    )
    role_argument(set_role, "role", help="viewer, editor or admin (any case)")
    add_command(
        commands,
        "delete",
        "delete a user for good",
        "Their logins go with them; the items and movements they touched stay. The last\n"
        "active admin cannot be deleted (disable is the gentler alternative).",
        run=delete_user,
        username="who to delete (case does not matter)",
    )


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


def _update(verb: str, username: str, data: UserUpdate, unchanged: Callable[[User], bool]) -> bool:
    """Apply `data` unless `unchanged(user)`; False if there was nothing to do."""

    async def work(db: AsyncSession) -> bool:
        user = await user_named(db, username)
        if unchanged(user):
            return False
        try:
            await users.update(db, user, data)
        except Conflict as exc:
            raise CommandError(f"cannot {verb} '{user.username}': {exc.detail.lower()}") from None
        return True

    return run_in_session(work)


def disable_user(args: argparse.Namespace) -> None:
    name = args.username.lower()
    if _update("disable", args.username, UserUpdate(is_active=False), lambda u: not u.is_active):
        print(f"disabled '{name}'; their logins were ended")
    else:
        print(f"'{name}' was already disabled")


def enable_user(args: argparse.Namespace) -> None:
    name = args.username.lower()
    if _update("enable", args.username, UserUpdate(is_active=True), lambda u: u.is_active):
        print(f"enabled '{name}'")
    else:
        print(f"'{name}' was already enabled")


def set_user_role(args: argparse.Namespace) -> None:
    name, role = args.username.lower(), Role(args.role)
    if _update(
        "change the role of", args.username, UserUpdate(role=role), lambda u: u.role == role
    ):
        print(f"'{name}' is now {role.value}")
    else:
        print(f"'{name}' was already {role.value}")


def delete_user(args: argparse.Namespace) -> None:
    async def work(db: AsyncSession) -> None:
        user = await user_named(db, args.username)
        try:
            await users.delete(db, user)
        except Conflict as exc:
            raise CommandError(f"cannot delete '{user.username}': {exc.detail.lower()}") from None

    run_in_session(work)
    print(f"deleted '{args.username.lower()}'")
