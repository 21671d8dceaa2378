"""The application factory. Nothing is built at import time: tests and tools swap settings."""

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp

from api import storage
from api.compression import Gzip
from api.docs import install_docs
from api.errors import install_error_handlers
from api.forwarded import ForwardedHeaders
from api.head import HeadAsGet
from api.logs import configure_logging
from api.middleware import BodySizeLimit, SecurityHeaders
from api.openapi import operation_id, refine
from api.request_log import RequestLogMiddleware
from api.routers import audit, health, images, items, movements, users
from api.settings import get_api_settings
from auth.router import router as auth_router
from auth.secret import get_secret_key
from auth.throttle import connect_redis
from models.engine import create_engine, create_sessionmaker
from models.reads import Reads
from models.settings import Environment, get_database_settings

log = logging.getLogger("api.app")

DESCRIPTION = """
Keeps track of stock: items with quantities, users with roles.

Reads are public. To write, press **Authorize**, log in with your username and password,
and every call is sent with your bearer token.

Every `GET` route also answers `HEAD`: the same status and headers, without the body.
JSON over 1 KiB is sent gzip-compressed to clients that accept it (`Accept-Encoding: gzip`).
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    get_secret_key()  # refuse to start without a usable key
    engine = create_engine(get_database_settings())
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.reads = reads = Reads(engine)
    app.state.login_throttle_redis = redis = connect_redis()
    storage.prepare_folder()
    removals = asyncio.create_task(storage.keep_retrying_removals())
    try:
        yield
    finally:
        removals.cancel()
        if (probe := getattr(app.state, "ready_probe", None)) is not None:
            probe.cancel()  # a /ready probe still waiting for the database
        if redis is not None:
            await redis.aclose()
        reads.close()
        await engine.dispose()


class InventoryAPI(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        # Outermost, so the request log sees every answer, Starlette's own 500 included.
        return RequestLogMiddleware(super().build_middleware_stack())

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            refine(super().openapi(), self.routes)
        return super().openapi()


def create_app() -> FastAPI:
    settings = get_api_settings()
    configure_logging()
    docs = settings.DOCS_ENABLED
    app = InventoryAPI(
        title=settings.PROJECT_NAME,
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
        # Served by api/docs.py from local files (not FastAPI's CDN links), with a CSP.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
        swagger_ui_parameters={"persistAuthorization": False},
        generate_unique_id_function=operation_id,
    )
    if docs:
        install_docs(app, "/openapi.json")
    install_error_handlers(app)
    _add_middleware(app)
    app.include_router(auth_router)
    app.include_router(items.router)
    app.include_router(images.router)
    app.include_router(movements.router)
    app.include_router(users.router)
    app.include_router(audit.router)
    app.include_router(health.router)
    return app


def create_served_app() -> FastAPI:
    """The app of a server process (`inventory serve`, each worker)."""
    app = create_app()
    # What exists now lives as long as the process: keep full collections from scanning it
    # again and again (each paused the event loop; bench/RESULTS.md). Not in create_app: a test
    # process builds many apps and must be able to collect them.
    gc.freeze()
    return app


def _add_middleware(app: FastAPI) -> None:
    """The last added runs first: security headers wrap the app, even CORS and 413s;
    compression, HEAD and the forwarded headers wrap them."""
    settings = get_api_settings()
    app.add_middleware(
        BodySizeLimit,
        max_json=settings.MAX_JSON_BODY_BYTES,
        max_multipart=settings.MAX_MULTIPART_BODY_BYTES,
        multipart_paths=("/item-image/",),
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "If-None-Match"],
            expose_headers=["ETag", "Location", "Retry-After"],
            max_age=600,
        )
    if settings.allowed_hosts:
        app.add_middleware(
            TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts, www_redirect=False
        )
    elif Environment.production == get_database_settings().ENVIRONMENT:
        log.warning(
            "ALLOWED_HOSTS is not set: any Host header is accepted, and redirects follow it;"
            " set it to the names this service is reached by"
        )
    app.add_middleware(SecurityHeaders)
    if settings.GZIP_LEVEL:
        app.add_middleware(Gzip, level=settings.GZIP_LEVEL)
    app.add_middleware(HeadAsGet)  # outside gzip: a HEAD shows the GET's encoding and length
    if settings.trusted_proxies:
        app.add_middleware(ForwardedHeaders, trusted=settings.trusted_proxies)
