"""`surveil serve`: the HTTP API and operator console."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import structlog
import typer

from surveil.cli.common import app, cli_settings, handle_errors, stop_signals
from surveil.container import Services, build_services

if TYPE_CHECKING:
    from surveil.ingest.live.service import LiveService

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
    from surveil.jobs.scheduler import Scheduler

    with handle_errors():
        settings = cli_settings()
        services = build_services(settings)
        try:
            services.load_models()  # a bad model stops here, before anything listens
        except BaseException:
            services.close()
            raise
    bind_host = host or settings.api.host
    bind_port = port or settings.api.port
    jobs = Scheduler(services) if settings.scheduler.in_serve else None
    live = _live(services) if settings.live.in_serve else None
    # uvicorn handles SIGTERM/SIGINT itself (graceful HTTP shutdown), then raises the
    # signal again with the handlers it found: ours only log it, so the scheduler and
    # live ingest below still stop cleanly and serve exits 0.
    with stop_signals("serve.signal"):
        try:
            app_ = create_app(services)
            if jobs is not None:
                jobs.start()  # alert rules, webhooks, retention (scheduler.in_serve)
            if live is not None:
                live.start()  # the cameras' ingest, as `surveil run` does (live.in_serve)
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
            if live is not None:
                live.stop()  # uvicorn took SIGTERM/SIGINT; drain, commit, save the index
            if jobs is not None:
                jobs.stop()
            services.close()


def _live(services: Services) -> LiveService:
    from surveil.ingest.live.service import LiveService

    return LiveService(services)
