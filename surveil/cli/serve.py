"""`surveil serve`: the HTTP API and operator console."""

from __future__ import annotations

from typing import Annotated

import structlog
import typer

from surveil.cli.common import app, cli_settings, handle_errors
from surveil.container import build_services

log = structlog.get_logger(__name__)


@app.command(
    epilog="Example:  surveil serve --host 0.0.0.0 --port 8080   "
    "(then open http://HOST:8080/ and log in with a key from `surveil keys create`)"
)
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default: api.host, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port (default: api.port, 8080).", min=1, max=65535)
    ] = None,
) -> None:
    """Serve the search API under /api/v1 and the operator console at /."""
    import uvicorn

    from surveil.api.app import create_app

    with handle_errors():
        settings = cli_settings()
        services = build_services(settings)
    bind_host = host or settings.api.host
    bind_port = port or settings.api.port
    try:
        app_ = create_app(services)
        log.info("serve.start", url=f"http://{bind_host}:{bind_port}/")
        # One process: the models and index live in it; concurrency comes from threads.
        uvicorn.run(
            app_,
            host=bind_host,
            port=bind_port,
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=10,
        )
    finally:
        services.close()
