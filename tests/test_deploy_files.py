"""deploy/: the nginx site and the systemd unit agree with the service's settings."""

import re
from pathlib import Path

from api.settings import ApiSettings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SITE = (DEPLOY / "nginx-inventory.conf").read_text()
UNIT = (DEPLOY / "inventory@.service").read_text()


def _directive(text: str, name: str) -> str:
    found = re.findall(rf"^\s*{name}\s+([^;\n]+);", text, re.MULTILINE)
    assert len(found) == 1, f"{name}: {found}"
    return str(found[0]).strip()


def test_nginx_admits_the_largest_upload_and_leaves_the_413_to_the_app() -> None:
    value = _directive(SITE, "client_max_body_size")
    size = int(value[:-1]) * {"k": 1024, "m": 1024**2}[value[-1]]
    defaults = ApiSettings.model_fields
    assert defaults["MAX_UPLOAD_BYTES"].default < size
    assert size <= defaults["MAX_MULTIPART_BODY_BYTES"].default


def test_nginx_never_sends_a_post_twice() -> None:
    retries = _directive(SITE, "proxy_next_upstream").split()
    assert "non_idempotent" not in retries
    assert {"error", "timeout"} <= set(retries)


def test_nginx_forwards_what_trusted_proxies_reads_and_keeps_upstreams_alive() -> None:
    assert _directive(SITE, "proxy_set_header X-Forwarded-For") == "$remote_addr"
    assert _directive(SITE, "proxy_set_header X-Forwarded-Proto") == "$scheme"
    assert _directive(SITE, "proxy_http_version") == "1.1"
    assert _directive(SITE, "proxy_set_header Connection") == '""'
    assert int(_directive(SITE, "keepalive")) > 0


def test_the_unit_is_confined_to_its_data_and_upload_folders() -> None:
    settings = dict(re.findall(r"^(\w+)=(.*)$", UNIT, re.MULTILINE))
    assert settings["NoNewPrivileges"] == "yes"
    assert settings["ProtectSystem"] == "strict"
    assert settings["Restart"] == "on-failure"
    assert settings["EnvironmentFile"].startswith("/etc/")
    writable = settings["ReadWritePaths"].split()
    assert any(p.endswith("/data") for p in writable)
    assert any(p.endswith("/uploads") for p in writable)
