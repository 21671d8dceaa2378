"""`inventory serve` starting: a port this service already serves is refused at once, and
spawned workers answer the supervisor's health check before they import the app."""

import multiprocessing.spawn
import subprocess
import sys
import types
from pathlib import Path

import httpx
import pytest

from api.listen import light_worker_start
from tests.server import running_server, server_env

INVENTORY = str(Path(sys.executable).with_name("inventory"))


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


def test_workers_start_within_a_tight_health_check(tmp_path: Path) -> None:
    """With WORKER_HEALTHCHECK_TIMEOUT=1 both workers come up and none is killed."""
    data = tmp_path / "data"
    with running_server(
        data, "a long enough password", workers=2, extra_env={"WORKER_HEALTHCHECK_TIMEOUT": "1"}
    ) as base:
        for _ in range(20):
            assert httpx.get(f"{base}/health").status_code == 200
    log = (data / "server.log").read_text()
    assert log.count("Application startup complete") == 2, log
    assert "died" not in log
    assert "not ready" not in log
