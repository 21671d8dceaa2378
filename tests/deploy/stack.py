"""The production shape on one machine, for tests/deploy: nginx (the site in deploy/) in
front of two `inventory serve` instances on unix sockets, one PostgreSQL database made for
the run, Redis and one upload folder.

Isolation: every path under the test's temp folder (nginx's prefix, pid, logs and temp
files included); nginx listens on a loopback socket the test bound to port 0 and hands it
over (nginx adopts sockets named in its NGINX environment variable, as in its binary
upgrade), so no port is guessed; the database is created and dropped here; the throttle's
Redis keys are HMACs under this run's own SECRET_KEY.
"""

import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import new_database
from tests.server import healthy, server_env, start, stop, wait_for

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "deploy" / "nginx-inventory.conf"
NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")
ADMIN_PASSWORD = "deploy test admin password"
STARTUP_SECONDS = 90


def requirements() -> tuple[str, str]:
    """(PostgreSQL URL, Redis URL), or skip saying what is missing (under CI, a missing
    nginx or Redis fails instead)."""
    pg = os.environ.get("TEST_DATABASE_URL", "")
    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
    if not pg.startswith("postgresql"):
        # A SQLite run (`make test`): not something to install, so never a failure.
        pytest.skip("needs TEST_DATABASE_URL (a PostgreSQL server): `make test-deploy`")
    missing = []
    if not shutil.which(NGINX):
        missing.append(f"{NGINX} (`make nginx` installs Debian's nginx with apt-get)")
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        missing.append(f"Redis at {redis_url} (TEST_REDIS_URL)")
    if missing:
        message = "needs " + "; ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return pg, redis_url


@dataclass
class Instance:
    name: str
    socket: Path
    log: Path
    proc: subprocess.Popen[bytes]

    def client(self) -> httpx.Client:
        """Straight to this instance, past nginx."""
        transport = httpx.HTTPTransport(uds=str(self.socket))
        return httpx.Client(transport=transport, base_url="http://instance", timeout=30)

    def stop(self) -> int:
        return stop(self.proc, 60)


def start_instance(folder: Path, name: str, env: dict[str, str]) -> Instance:
    home = folder / name
    home.mkdir()
    sock = home / "inventory.sock"
    log = home / "server.log"
    proc = start(["serve", "--uds", str(sock)], home, {**env, "DATA_DIR": str(home / "data")}, log)
    instance = Instance(name, sock, log, proc)
    with instance.client() as client:
        wait_for(lambda: healthy(client), proc, log, STARTUP_SECONDS)
    return instance


def nginx_site(upstreams: list[Path], port: int) -> str:
    """deploy/nginx-inventory.conf with the test's instances and listening address."""
    site = SITE.read_text()
    site, servers = re.subn(r"^\s*server [^\s;]+;\n", "", site, flags=re.MULTILINE)
    assert servers >= 2, "the site's upstream servers were not found"
    ours = "".join(f"    server unix:{path};\n" for path in upstreams)
    site = site.replace("upstream inventory {\n", "upstream inventory {\n" + ours, 1)
    site, listens = re.subn(r"^\s*listen (80|\[::\]:80);\n", "", site, flags=re.MULTILINE)
    assert listens == 2, "the site's listen lines were not found"
    return site.replace("server {\n", f"server {{\n    listen 127.0.0.1:{port};\n", 1)


def nginx_conf(prefix: Path, site: Path) -> str:
    temp = {k: prefix / k for k in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    # Run by root, nginx would hand its worker to `nobody`, who cannot enter the temp folder.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    return f"""
daemon off;
{user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 2048; }}
http {{
    log_format upstreams '$remote_addr $request_method $uri $status $upstream_addr';
    access_log {prefix}/access.log upstreams;
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    include {site};
}}
"""


@dataclass
class Nginx:
    prefix: Path
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def access_log(self) -> list[str]:
        return (self.prefix / "access.log").read_text().splitlines()


@contextmanager
def running_nginx(prefix: Path, upstreams: list[Path]) -> Iterator[Nginx]:
    prefix.mkdir()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(511)
    port = listener.getsockname()[1]
    (prefix / "site.conf").write_text(nginx_site(upstreams, port))
    (prefix / "nginx.conf").write_text(nginx_conf(prefix, prefix / "site.conf"))
    out = (prefix / "nginx.out").open("wb")
    fd = listener.fileno()
    with listener, out:
        proc = subprocess.Popen(  # noqa: S603
            [
                NGINX,
                "-p",
                str(prefix),
                "-c",
                str(prefix / "nginx.conf"),
                "-e",
                str(prefix / "error.log"),
            ],
            env={"PATH": os.environ.get("PATH", ""), "NGINX": f"{fd};"},
            pass_fds=(fd,),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    # Our copy of the socket is closed: nginx holds the only one.
    nginx = Nginx(prefix, port, proc)
    try:
        with httpx.Client(base_url=nginx.base_url, timeout=30) as client:
            wait_for(lambda: healthy(client), proc, prefix / "error.log", STARTUP_SECONDS)
        yield nginx
    finally:
        stop(proc)


@dataclass
class Stack:
    nginx: Nginx
    instances: list[Instance]
    database_url: str
    upload_dir: Path
    env: dict[str, str] = field(repr=False)


@contextmanager
def running_stack(folder: Path, pg_server: str, redis_url: str) -> Iterator[Stack]:
    uploads = folder / "uploads"
    uploads.mkdir()
    with new_database(pg_server, f"inventory_deploy_{secrets.token_hex(4)}") as database_url:
        env = {
            **server_env(folder, ADMIN_PASSWORD),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "UPLOAD_DIR": str(uploads),
            "SECRET_KEY": secrets.token_urlsafe(48),
            "TRUSTED_PROXIES": "unix",
            "DB_POOL_SIZE": "10",
            "LOGIN_FAILURES_PER_ADDRESS": "3",
            "LOGIN_FAILURES_PER_PAIR": "0",
            "LOGIN_FAILURES_PER_USERNAME": "0",
        }
        instances: list[Instance] = []
        try:
            # One after the other: the first migrates and creates the admin.
            for name in ("a", "b"):
                instances.append(start_instance(folder, name, env))
            with running_nginx(folder / "nginx", [i.socket for i in instances]) as nginx:
                yield Stack(nginx, instances, database_url, uploads, env)
        finally:
            for instance in instances:
                if instance.proc.poll() is None:
                    instance.stop()
