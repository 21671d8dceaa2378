"""What gzip costs: per level, the size and CPU time of compressing real answers, and a whole
`GET /items?limit=100` in-process with and without `Accept-Encoding: gzip`. Asserts nothing.

    .venv/bin/python bench/gzip_cost.py [requests]
"""

import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

REQUESTS = int(sys.argv[1]) if len(sys.argv) > 1 else 300
LEVELS = (1, 4, 6, 9)


async def main(data_dir: Path) -> None:
    os.environ.update(
        DATA_DIR=str(data_dir),
        DATABASE_URL="",
        SECRET_KEY=secrets.token_urlsafe(48),
        LOG_LEVEL="WARNING",
    )
    from httpx import ASGITransport, AsyncClient

    from api.app import create_app
    from api.compression import gzip
    from api.settings import get_api_settings
    from models import migrations
    from models.item import Item

    await asyncio.to_thread(migrations.upgrade)
    app = create_app()
    async with app.router.lifespan_context(app):
        async with app.state.sessionmaker() as db:
            db.add_all(
                Item(
                    name=f"Hex bolt M{n % 24 + 3} x {n * 5 % 120 + 10} zinc plated",
                    quantity=n * 7 % 500,
                    sku=f"HB-{n:05d}",
                    description="Stainless, DIN 933, box of 100." if n % 3 else None,
                )
                for n in range(1, 101)
            )
            await db.commit()
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://bench") as client:
            plain = {"Accept-Encoding": "identity"}
            bodies = {
                "one item": (await client.get("/items/1", headers=plain)).content,
                "page of 20": (await client.get("/items?limit=20", headers=plain)).content,
                "page of 100": (await client.get("/items?limit=100", headers=plain)).content,
            }
            print("| answer | bytes | level | gzipped | ratio | µs per answer | MB/s |")
            print("|---|---:|---:|---:|---:|---:|---:|")
            for name, body in bodies.items():
                for level in LEVELS:
                    runs = []
                    for _ in range(7):
                        start = time.perf_counter()
                        for _ in range(200):
                            out = gzip(body, level)
                        runs.append((time.perf_counter() - start) / 200)
                    best = min(runs)
                    print(
                        f"| {name} | {len(body):,} | {level} | {len(out):,} "
                        f"| {len(body) / len(out):.1f} | {best * 1e6:.0f} "
                        f"| {len(body) / best / 1e6:.0f} |"
                    )

            # The whole request, alternating so that drift in a busy machine hits both alike.
            timings: dict[str, list[float]] = {"identity": [], "gzip": []}
            for _ in range(REQUESTS):
                for encoding in ("identity", "gzip"):
                    start = time.perf_counter()
                    r = await client.get("/items?limit=100", headers={"Accept-Encoding": encoding})
                    timings[encoding].append(time.perf_counter() - start)
                    assert r.status_code == 200
            level = get_api_settings().GZIP_LEVEL
            print(f"\nGET /items?limit=100 in-process, {REQUESTS} each, GZIP_LEVEL={level}:")
            print("| Accept-Encoding | median ms | p90 ms |")
            print("|---|---:|---:|")
            for encoding, values in timings.items():
                values.sort()
                p90 = values[int(len(values) * 0.9)]
                print(f"| {encoding} | {statistics.median(values) * 1e3:.2f} | {p90 * 1e3:.2f} |")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(main(Path(folder)))
