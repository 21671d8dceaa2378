"""Alembic runs migrations with the app's own engine factory (same SQLite pragmas)."""

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from models.engine import create_engine
from models.item import SEARCH_TABLE, TRIGRAM_INDEXES
from models.settings import get_database_settings
from models.tables import metadata

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str:
    # Tests and the CLI may hand a URL over; otherwise the app's settings decide.
    return str(config.attributes.get("url") or get_database_settings().database_url)


def _described(name: str | None, type_: str, _parents: object) -> bool:
    """False for the search structures the metadata cannot describe (models/item.py)."""
    if type_ == "table":
        return not (name or "").startswith(SEARCH_TABLE)  # the FTS5 table and its shadows
    if type_ == "index":
        return name not in TRIGRAM_INDEXES
    return True


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=_described,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    # No statement timeout: a migration may rewrite a large table.
    update = {"DATABASE_URL": _database_url(), "DB_COMMAND_TIMEOUT": 0}
    settings = get_database_settings().model_copy(update=update)
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_configure)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_database_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
