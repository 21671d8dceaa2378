"""Property-based API fuzzing: schemathesis against our own OpenAPI schema, over every operation.

Serves the app for real (`inventory serve`: uvicorn, migrations, first admin) on a fresh SQLite
database, then runs schemathesis with an admin token (tests/fuzz_hooks.py) and these checks:
no 5xx, every status code documented, every response body matching its documented schema.
Bounded: FUZZ_MAX_EXAMPLES per operation and FUZZ_MAX_SECONDS of wall-clock time.

    make fuzz                                   # or: .venv/bin/python tests/fuzz_api.py
    FUZZ_MAX_EXAMPLES=500 FUZZ_MAX_SECONDS=900 make fuzz   # a longer hunt
"""

import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: `tests` is not on the path otherwise

from tests.server import running_server, server_env  # noqa: E402

CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"

SERVER_SETTINGS = {
    "REDIS_URL": "",
    "SECRET_KEY": secrets.token_urlsafe(48),
    # Cheap hashing keeps the run about the API, not argon2.
    "ARGON2_MEMORY_COST_KIB": "64",
    "ARGON2_TIME_COST": "1",
    # The fuzzer's random logins would otherwise throttle the admin's own login.
    "LOGIN_FAILURES_PER_PAIR": "0",
    "LOGIN_FAILURES_PER_USERNAME": "0",
    "LOGIN_FAILURES_PER_ADDRESS": "0",
    "LOG_LEVEL": "WARNING",
}


def main() -> int:
    max_examples = os.environ.get("FUZZ_MAX_EXAMPLES", "40")
    max_seconds = int(os.environ.get("FUZZ_MAX_SECONDS", "240"))
    password = secrets.token_urlsafe(16)
    with (
        tempfile.TemporaryDirectory(prefix="fuzz-") as data_dir,
        running_server(Path(data_dir), password, settings=SERVER_SETTINGS) as url,
    ):
        # The hooks restore the admin's password with `inventory set-password` on the same data.
        env = {
            **server_env(Path(data_dir), password, SERVER_SETTINGS),
            "FUZZ_BASE_URL": url,
            "SCHEMATHESIS_HOOKS": "tests.fuzz_hooks",
            "PYTHONPATH": str(ROOT),
        }
        command = [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{url}/openapi.json",
            "--checks",
            CHECKS,
            "--max-examples",
            max_examples,
            "--max-time",
            str(max_seconds),
            "--workers",
            "1",
            "--seed",
            os.environ.get("FUZZ_SEED", "20261125"),
            "--suppress-health-check",
            "too_slow,filter_too_much",
        ]
        try:
            # Run from the scratch directory: schemathesis keeps a cache in its cwd.
            return subprocess.run(  # noqa: S603
                command, cwd=data_dir, env=env, timeout=max_seconds + 120, check=False
            ).returncode
        except subprocess.TimeoutExpired:
            print("fuzz: schemathesis ran past its time budget", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
