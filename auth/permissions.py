"""The one role table: which capability each role has. Routes, tests and the README use it."""

from enum import StrEnum

from models.enums import Role


class Capability(StrEnum):
    read = "read items, item images, /docs, health"
    own_account = "own profile, own password, refresh, logout"
    read_movements = "read stock movements"
    edit_items = "create / update items, upload / remove images, adjust stock"
    delete_items = "delete items"
    manage_users = "manage users (list, create, change role, disable, reset password, delete)"
    read_audit = "read the audit trail"


# The least role that holds each capability; None means public.
MINIMUM_ROLE: dict[Capability, Role | None] = {
    Capability.read: None,
    Capability.own_account: Role.viewer,
    Capability.read_movements: Role.viewer,
    Capability.edit_items: Role.editor,
    Capability.delete_items: Role.admin,
    Capability.manage_users: Role.admin,
    Capability.read_audit: Role.admin,
}


def allows(role: Role | None, capability: Capability) -> bool:
    needed = MINIMUM_ROLE[capability]
    if needed is None:
        return True
    return role is not None and role.rank >= needed.rank


def role_table_markdown() -> str:
    """The README's role table, generated from MINIMUM_ROLE."""
    columns = [None, *Role]
    head = "| capability | public | " + " | ".join(r.value for r in Role) + " |"
    rows = [head, "|---|" + "---|" * len(columns)]
    for cap in Capability:
        marks = " | ".join("yes" if allows(r, cap) else "–" for r in columns)
        rows.append(f"| {cap.value} | {marks} |")
    return "\n".join(rows)
