"""Entity tags: the one comparison behind If-Match and If-None-Match."""


def matches(header: str, current: str, *, weak: bool = False) -> bool:
    """RFC 9110: `header` is a list of tags or `*`. If-Match compares strongly (a `W/` tag
    never matches), If-None-Match weakly (`weak=True`)."""
    for raw in header.split(","):
        tag = raw.strip()
        if weak:
            tag = tag.removeprefix("W/")
        if tag in ("*", current):
            return True
    return False
