"""Schemathesis hooks for tests/fuzz_api.py: every request carries a live admin token.

The fuzzer may log its admin out (a 401 makes schemathesis fetch a new token). It may also
create a second admin and then disable, demote, delete or re-password the first: the run would
go on testing nothing but 401s, so PATCH and DELETE aimed at the fuzzing admin's own id are
sent to an id that does not exist instead. Should its password change anyway, the real
`inventory set-password` command restores it.
"""

import os
import subprocess
import sys
from typing import Any

import httpx
import schemathesis

BASE_URL = os.environ["FUZZ_BASE_URL"]
ADMIN_ID = 1  # the first admin of the fresh database
NO_SUCH_USER = 2**31 - 1
USERNAME = os.environ["FIRST_ADMIN_USERNAME"]
PASSWORD = os.environ["FIRST_ADMIN_PASSWORD"]


def _login() -> httpx.Response:
    return httpx.post(
        f"{BASE_URL}/token", data={"username": USERNAME, "password": PASSWORD}, timeout=10
    )


def _restore_password() -> None:
    subprocess.run(  # noqa: S603  (our own interpreter and CLI)
        [sys.executable, "-m", "api.cli", "set-password", USERNAME],
        input=PASSWORD + "\n",
        text=True,
        check=True,
        capture_output=True,
    )


@schemathesis.auth(refresh_interval=120)
class AdminToken:
    def get(self, case: Any, context: Any) -> str:
        r = _login()
        if r.status_code == 401:
            _restore_password()
            r = _login()
        r.raise_for_status()
        return str(r.json()["access_token"])

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    operation = case.operation
    params = case.path_parameters or {}
    if (
        operation.path == "/users/{user_id}"
        and operation.method.upper() in ("PATCH", "DELETE")
        and str(params.get("user_id")) == str(ADMIN_ID)
    ):
        case.path_parameters = {**params, "user_id": NO_SUCH_USER}
