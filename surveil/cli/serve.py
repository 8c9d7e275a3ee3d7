"""`surveil serve`: the HTTP API and operator console."""

from __future__ import annotations

import errno
import socket
from typing import TYPE_CHECKING, Annotated

import structlog
import typer

from surveil.cli.common import app, cli_settings, handle_errors, stop_signals
from surveil.container import Services, build_services
from surveil.domain import InputError

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
        bind_host = host or settings.api.host
        bind_port = port or settings.api.port
        # Bound before anything loads, so a busy port is one line at once, not a traceback.
        sock = bind_socket(bind_host, bind_port)
        try:
            services = build_services(settings)
        except BaseException:
            sock.close()
            raise
        try:
            services.load_models()  # a bad model stops here, before anything serves
            services.warm_index()  # shards load in the background: no slow first search
        except BaseException:
            sock.close()
            services.close()
            raise
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
            config = uvicorn.Config(
                app_,
                log_config=None,
                access_log=False,  # surveil.api.access_log writes our own (api.access_log)
                server_header=False,
                timeout_graceful_shutdown=10,
            )
            uvicorn.Server(config).run(sockets=[sock])
        finally:
            sock.close()
            if live is not None:
                live.stop()  # uvicorn took SIGTERM/SIGINT; drain, commit, save the index
            if jobs is not None:
                jobs.stop()
            services.close()


def _live(services: Services) -> LiveService:
    from surveil.ingest.live.service import LiveService

    return LiveService(services)


def bind_socket(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (uvicorn listens on it); a busy port is an InputError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restarts
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise InputError(
                f"port {port} on {host} is already in use (another surveil serve?); stop that "
                "process or pick a free port with --port N or api.port / SURVEIL_API__PORT"
            ) from None
        raise InputError(
            f"cannot listen on {host}:{port} ({exc.strerror}); set --host / api.host to an "
            "address of this machine and --port / api.port to a port you may use"
        ) from None
    sock.set_inheritable(True)
    return sock
