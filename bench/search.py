"""Search, sort and import at catalogue size (issue 16): one worker of the real server, wrk -c8.

    python bench/search.py [--db sqlite,postgres] [--seconds 4] [--quick]

Per database: a fresh database is migrated; 100,000 items are imported from a CSV file with
`inventory import` (timed), exported with `inventory export` (timed); on PostgreSQL the table is
then grown to 1,000,000 items by SQL (the same kind of rows) and analyzed. Then every query of
QUERIES is loaded for `--seconds` at 8 connections (after a 1 s warm-up) and one table is
printed: matches (`total`, `+` when not exact), req/s, p50, p99, and the targets (>= 100 req/s,
p99 <= 100 ms; import <= 15 s SQLite / 20 s PostgreSQL; export <= 5 s). See bench/README.md.
"""

import argparse
import asyncio
import json
import random
import resource
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# bench/ is a folder of scripts, not a package: run.py is imported from beside this file.
from run import (
    BIN,
    EDITOR,
    ROOT,
    WrkResult,
    _pg_url,
    ensure_wrk,
    reset_postgres,
    running,
    service_env,
    start_server,
    wrk,
)

IMPORTED = 100_000
POSTGRES_ITEMS = 1_000_000
NOUNS = [
    "bolt", "washer", "nut", "screw", "hinge", "bracket", "spring", "gasket",
    "bearing", "clamp", "rivet", "pin", "Ölfilter", "valve",
]  # fmt: skip
KINDS = ["Hex", "Flat", "Round", "Square", "Heavy", "Light", "Zinc", "Brass", "Steel", "Nylon"]
# The list: searches (common, rare, absent, short), every sort key both ways, the
# quantity filters, and combinations with paging.
QUERIES = [
    "/items?limit=20",
    "/items?q=bolt",
    "/items?q=SKU-0999",
    "/items?q=zzz",
    "/items?q=%C3%B6lfilter",
    "/items?q=bolt&sort=-quantity",
    "/items?q=bolt&skip=200",
    "/items?q=bolt&min_quantity=490",
    "/items?q=b",
    "/items?q=zq",
    "/items?sort=-id",
    "/items?sort=name",
    "/items?sort=-name",
    "/items?sort=quantity",
    "/items?sort=-quantity",
    "/items?sort=created_at",
    "/items?sort=-created_at",
    "/items?sort=updated_at",
    "/items?sort=-updated_at",
    "/items?min_quantity=490",
    "/items?max_quantity=10",
    "/items?min_quantity=100&max_quantity=200&sort=-quantity",
    "/items?min_quantity=490&sort=name&skip=100",
    "/items?sort=-quantity&skip=1000",
]
LOW_STOCK = "/items?low_stock=true"  # measured when the server knows the filter


def name_of(i: int, rnd: random.Random) -> str:
    return f"{rnd.choice(KINDS)} {rnd.choice(NOUNS)} M{rnd.randint(2, 24)}-{rnd.randint(5, 200)}"


def write_csv(path: Path, count: int) -> None:
    rnd = random.Random(16)
    with path.open("w", encoding="utf-8") as out:
        out.write("sku,name,quantity,description\n")
        for i in range(count):
            out.write(f"SKU-{i:06d},{name_of(i, rnd)},{rnd.randint(0, 500)},\n")


def grow_postgres(database_url: str, first: int, count: int) -> float:
    """More items of the same kind by SQL (an import of a million rows takes minutes)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    kinds = "ARRAY[" + ",".join(f"'{k}'" for k in KINDS) + "]"
    nouns = "ARRAY[" + ",".join(f"'{n}'" for n in NOUNS) + "]"
    sql = f"""
        INSERT INTO items (name, quantity, sku, created_at, updated_at, version)
        SELECT ({kinds})[1 + (random() * 9)::int] || ' ' || ({nouns})[1 + (random() * 13)::int]
               || ' M' || (2 + (random() * 22)::int) || '-' || (5 + (random() * 195)::int),
               (random() * 500)::int, 'SKU-' || lpad(g::text, 7, '0'), now(), now(), 1
        FROM generate_series({first}, {first + count - 1}) AS g
    """

    async def work() -> None:
        engine = create_async_engine(database_url)
        async with engine.begin() as conn:
            await conn.execute(text(sql))
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("VACUUM ANALYZE items")
        await engine.dispose()

    start = time.monotonic()
    asyncio.run(work())
    return time.monotonic() - start


@dataclass
class Line:
    query: str
    total: str
    result: WrkResult | None
    note: str = ""

    @property
    def ok(self) -> bool:
        r = self.result
        return r is not None and r.errors == 0 and r.rate >= 100 and r.p99_ms <= 100


def probe(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    total = str(body.get("total", "?")) + ("" if body.get("total_exact", True) else "+")
    return 200, total


def knows_low_stock(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=30) as resp:
        spec = json.loads(resp.read())
    params = spec["paths"]["/items"]["get"].get("parameters", [])
    return any(p["name"] == "low_stock" for p in params)


def bench_database(db: str, args: argparse.Namespace, tmp: Path) -> tuple[list[Line], list[str]]:
    work = tmp / db
    work.mkdir()
    if db == "sqlite":
        url = f"sqlite+aiosqlite:///{work / 'data' / 'inventory.db'}"
    else:
        reset_postgres(args.pg, args.pg_db)
        url = _pg_url(args.pg, args.pg_db, "asyncpg")
    env = service_env(work, url)
    inventory = str(BIN / "inventory")
    _run([inventory, "migrate"], env, work)
    subprocess.run(
        [inventory, "create-user", EDITOR, "--role", "editor"],
        input=secrets.token_urlsafe(16) + "\n",
        text=True,
        env=env,
        cwd=work,
        check=True,
        capture_output=True,
    )
    csv_file = work / "items.csv"
    write_csv(csv_file, args.imported)
    notes = []
    command = [inventory, "import", str(csv_file), "--as", EDITOR, "--no-progress"]
    seconds, cpu = _timed(command, env, work)
    limit = 15 if db == "sqlite" else 20
    verdict = "PASS" if args.imported < IMPORTED or seconds <= limit else "FAIL"
    notes.append(
        f"{verdict}  import of {args.imported:,} new rows: {seconds:.1f} s (≤ {limit} s); {cpu}"
    )
    command = [inventory, "export", str(work / "out.csv")]
    seconds, cpu = _timed(command, env, work)
    verdict = "PASS" if args.imported < IMPORTED or seconds <= 5 else "FAIL"
    notes.append(f"{verdict}  export of {args.imported:,} items: {seconds:.1f} s (≤ 5 s); {cpu}")
    if db == "postgres" and args.pg_items > args.imported:
        grown = args.pg_items - args.imported
        seconds = grow_postgres(url, args.imported, grown)
        notes.append(f"      grown by {grown:,} items by SQL, then VACUUM ANALYZE: {seconds:.0f} s")
    port = args.port
    cmd = [inventory, "serve", "--port", str(port), "--workers", "1"]
    server = start_server(
        "service", cmd, port=port, env=env, cwd=work, ready_path="/health", workers=1
    )
    lines: list[Line] = []
    with running(server):
        queries = [*QUERIES, *([LOW_STOCK] if knows_low_stock(port) else [])]
        for path in queries:
            status, total = probe(port, path)
            if status != 200:
                lines.append(Line(path, "-", None, f"answered {status}"))
                continue
            env_wrk = {"BENCH_PATH": path}
            wrk(port, "path", connections=8, seconds=1, env=env_wrk)  # warm-up
            result = wrk(port, "path", connections=8, seconds=args.seconds, env=env_wrk)
            lines.append(Line(path, total, result))
            print(_row(db, lines[-1]), flush=True)
    return lines, notes


def _timed(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    """Wall seconds, and the command's own CPU time (on a shared machine the steadier figure;
    it includes the CLI's start-up, and not PostgreSQL's server processes)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    _run(command, env, cwd)
    seconds = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    return seconds, f"CPU of the command {user:.1f} s user + {system:.1f} s sys"


def _run(command: list[str], env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}{done.stdout}")


def _row(db: str, line: Line) -> str:
    r = line.result
    if r is None:
        return f"{db:8} {line.query:58} {line.total:>8} {line.note}"
    errors = f"{r.errors} errors" if r.errors else ""
    mark = "ok" if line.ok else "MISS"
    return (
        f"{db:8} {urllib.parse.unquote(line.query):58} {line.total:>8} {r.rate:8.1f} "
        f"{r.p50_ms:8.1f} {r.p99_ms:8.1f}  {mark} {errors}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--db", default="sqlite,postgres", help="which databases (default: both)")
    p.add_argument("--seconds", type=float, default=4, help="load per query (default 4)")
    p.add_argument("--imported", type=int, default=IMPORTED, help="rows imported (100,000)")
    p.add_argument("--pg-items", type=int, default=POSTGRES_ITEMS, help="PostgreSQL items (1M)")
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432", help="PostgreSQL")
    p.add_argument("--pg-db", default="bench_search", help="database (wiped every run)")
    p.add_argument("--port", type=int, default=8110)
    p.add_argument("--quick", action="store_true", help="10,000 imported, 100,000 on PostgreSQL")
    args = p.parse_args(argv)
    if args.quick:
        args.imported, args.pg_items, args.seconds = 10_000, 100_000, 2
    return args


def main() -> int:
    args = parse_args()
    ensure_wrk()
    started = time.time()
    load = Path("/proc/loadavg").read_text().split()[:3]
    header = f"{'database':8} {'query':58} {'matches':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
    print(header, flush=True)
    report: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        for db in args.db.split(","):
            lines, notes = bench_database(db, args, Path(tmp))
            report += [_row(db, line) for line in lines] + notes
    print()
    print(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)), end=" · ")
    print(f"load average at start {' '.join(load)} · one worker · wrk -c8 ·", end=" ")
    print(f"{args.seconds:.0f} s per query")
    print(f"commit {_commit()}")
    print(header)
    print("\n".join(report))
    missed = sum(1 for r in report if " MISS" in r or r.startswith("FAIL"))
    print(f"\n{missed} target(s) missed; {time.time() - started:.0f} s in all")
    return 0


def _commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
