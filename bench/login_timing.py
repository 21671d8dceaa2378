"""Login timing: unknown user, wrong password and disabled account should cost about the same.

Each pays one argon2id verification (auth/login.py). This measures /token in-process with the
real hashing parameters and prints the median and spread per case; it asserts nothing.

    .venv/bin/python bench/login_timing.py [rounds]
"""

import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 30
PASSWORD = "correct horse battery"


async def main(data_dir: Path) -> None:
    os.environ.update(
        DATA_DIR=str(data_dir),
        DATABASE_URL="",
        SECRET_KEY=secrets.token_urlsafe(48),
        LOGIN_FAILURES_PER_PAIR="0",  # measure the check itself, not the throttle
        LOGIN_FAILURES_PER_USERNAME="0",
        LOGIN_FAILURES_PER_ADDRESS="0",
        LOG_LEVEL="WARNING",
    )
    from httpx import ASGITransport, AsyncClient

    from api.app import create_app
    from auth.passwords import hash_password
    from models import migrations
    from models.enums import Role
    from models.user import User

    await asyncio.to_thread(migrations.upgrade)
    app = create_app()
    async with app.router.lifespan_context(app):
        async with app.state.sessionmaker() as db:
            for name, active in (("alice", True), ("dora", False)):
                db.add(
                    User(
                        username=name,
                        password_hash=await hash_password(PASSWORD),
                        role=Role.viewer,
                        is_active=active,
                    )
                )
            await db.commit()
        cases = {
            "unknown user": ("nobody", PASSWORD),
            "wrong password": ("alice", "not the password"),
            "disabled account": ("dora", PASSWORD),
            "right password": ("alice", PASSWORD),
        }
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://bench") as client:
            timings: dict[str, list[float]] = {name: [] for name in cases}
            for _ in range(ROUNDS):
                for name, (username, password) in cases.items():  # interleaved: fair to drift
                    start = time.perf_counter()
                    r = await client.post(
                        "/token", data={"username": username, "password": password}
                    )
                    timings[name].append((time.perf_counter() - start) * 1000)
                    assert r.status_code == (200 if name == "right password" else 401), r.text
    print(f"/token, {ROUNDS} rounds, milliseconds")
    print(f"{'case':<18} {'median':>8} {'p10':>8} {'p90':>8}")
    for name, values in timings.items():
        deciles = statistics.quantiles(values, n=10)
        print(f"{name:<18} {statistics.median(values):8.1f} {deciles[0]:8.1f} {deciles[-1]:8.1f}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    with tempfile.TemporaryDirectory(prefix="bench-login-") as tmp:
        asyncio.run(main(Path(tmp)))
