"""`inventory serve` starting: a port this service already serves is refused at once,
spawned workers answer the supervisor's health check before they import the app, and they end
with their supervisor however it ends."""

import multiprocessing.spawn
import os
import signal
import subprocess
import sys
import types
from pathlib import Path

import httpx
import pytest

from api.listen import light_worker_start
from tests.server import INVENTORY, running_server, served, server_env
from tests.waiting import polled


def test_a_second_serve_on_the_same_port_fails_at_once(tmp_path: Path) -> None:
    with running_server(tmp_path / "first", "a long enough password", workers=2) as base:
        port = base.rsplit(":", 1)[1]
        second = tmp_path / "second"
        second.mkdir()
        try:
            done = subprocess.run(  # noqa: S603  (our own console script)
                [INVENTORY, "serve", "--port", port, "--workers", "2"],
                env=server_env(second, "another long password"),
                cwd=second,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail("the second server started on the same port")
        assert httpx.get(f"{base}/health").status_code == 200  # the first serves on
    assert done.returncode == 1
    assert done.stderr == (
        f"inventory: error: cannot listen on 127.0.0.1:{port}:"
        f" port {port} is in use by another `inventory serve`\n"
    )
    assert not (second / "data").exists()  # refused before touching a database


def test_workers_do_not_reimport_the_cli_before_answering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    script = types.ModuleType("__main__")
    script.__file__ = INVENTORY  # as when run as the `inventory` script
    script.__spec__ = None
    monkeypatch.setitem(sys.modules, "__main__", script)
    assert "init_main_from_path" in multiprocessing.spawn.get_preparation_data("worker")
    with light_worker_start():
        data = multiprocessing.spawn.get_preparation_data("worker")
    assert "init_main_from_path" not in data
    assert "init_main_from_name" not in data
    assert script.__file__ == INVENTORY  # put back for whatever runs next


def test_serve_hands_the_health_check_timeout_to_the_supervisor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WORKER_HEALTHCHECK_TIMEOUT reaches uvicorn's supervisor, which runs with the script
    hidden from the workers it spawns."""
    import uvicorn.supervisors

    from api import cli
    from tests.conftest import clear_settings

    seen: dict[str, object] = {}

    class Supervisor:
        def __init__(self, config: uvicorn.Config, sockets: list[object]) -> None:
            seen["timeout"] = config.timeout_worker_healthcheck

        def run(self) -> None:
            data = multiprocessing.spawn.get_preparation_data("worker")
            seen["reimports"] = "init_main_from_path" in data or "init_main_from_name" in data

    script = types.ModuleType("__main__")
    script.__file__ = INVENTORY
    script.__spec__ = None
    monkeypatch.setitem(sys.modules, "__main__", script)
    monkeypatch.setattr(uvicorn.supervisors, "Multiprocess", Supervisor)
    for name, value in server_env(tmp_path / "data", "a long enough password").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WORKER_HEALTHCHECK_TIMEOUT", "42")
    clear_settings()
    try:
        assert cli.main(["serve", "--port", "0", "--workers", "2"]) == 0
    finally:
        clear_settings()
    assert seen == {"timeout": 42, "reimports": False}


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields from the state on (state first, start time 20th), or []."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return []


def _workers(pid: int) -> dict[int, str]:
    """The worker processes of supervisor `pid` (not multiprocessing's resource tracker), each
    with its start time, which tells it from a later process given the same pid."""
    workers = {}
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in command and (fields := _stat(int(child))):
            workers[int(child)] = fields[19]
    return workers


def _running(pid: int, started: str) -> bool:
    # A worker that ended stays a zombie until whoever adopted it reaps it.
    fields = _stat(pid)
    return bool(fields) and fields[19] == started and fields[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_end_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    with served(tmp_path / "data", "a long enough password", workers=2) as (base, supervisor):

        def both() -> dict[int, str]:
            found = _workers(supervisor.pid)
            return found if len(found) == 2 else {}

        workers = polled(both, 30)
        supervisor.send_signal(signal.SIGKILL)
        supervisor.wait()
        try:
            polled(lambda: not any(_running(*worker) for worker in workers.items()), 30)
        finally:
            for worker in workers.items():  # never leave one serving, whatever the outcome
                if _running(*worker):
                    os.kill(worker[0], signal.SIGKILL)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/health", timeout=5)
