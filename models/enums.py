from enum import StrEnum


class Role(StrEnum):
    """User roles, from least to most privileged."""

    viewer = "viewer"
    editor = "editor"
    admin = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Role.viewer: 0, Role.editor: 1, Role.admin: 2}


class MovementReason(StrEnum):
    """Why an item's quantity changed (a stock movement's reason)."""

    received = "received"
    sold = "sold"
    used = "used"
    returned = "returned"
    damaged = "damaged"
    lost = "lost"
    counted = "counted"
    correction = "correction"
