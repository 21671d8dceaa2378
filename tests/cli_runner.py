"""Run `inventory` in-process. It calls asyncio.run, so async tests run it in a thread."""

import asyncio

from api import cli


async def run_cli(*argv: str) -> int:
    return await asyncio.to_thread(cli.main, list(argv))
