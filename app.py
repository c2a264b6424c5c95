"""CityBrain Command entry point: `python app.py [COMMAND]`; `create_server()` for gunicorn."""

from __future__ import annotations

import click

from dashboard.settings import Settings


def create_app(settings: Settings | None = None, engine=None, testing: bool = False):
    """The whole Dash app: the shell dashboard/server.py builds (store, sign-in, routes, API, pages) with every
    page's callbacks (callbacks/); migrates the store but never builds demo data."""
    from callbacks import register_all
    from dashboard.server import build_app

    return build_app(settings, engine=engine, testing=testing, register_callbacks=register_all)


def create_asgi():
    """The ASGI application for gunicorn's uvicorn workers (docs/deploy.md):
    `gunicorn -k uvicorn_worker.UvicornWorker 'app:create_asgi()'`; live streams cost no thread."""
    from dashboard.commands.serve import asgi_app

    settings = Settings.from_env()
    app = _production_app(settings)
    return asgi_app(app, settings)


def create_server():
    """The plain WSGI (Flask) server, for a WSGI-only host: `gunicorn 'app:create_server()'`. Live streams need
    the ASGI server (create_asgi); here the screens fall back to polling."""
    return _production_app(Settings.from_env()).server


def _production_app(settings: Settings):
    from dashboard.commands.worker import start_background
    from dashboard.observability.logs import configure_logging

    configure_logging(settings.log_format)  # gunicorn configures only its own loggers; the app's lines need a home
    app = create_app(settings)
    if settings.background == "in-process":
        # Every web worker takes part; each job is elected on the store, so none runs twice at once.
        start_background(app.server.extensions["citybrain"].engine, settings)
    return app


@click.group(invoke_without_command=True)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """CityBrain Command: the grid governance command-centre dashboard. With no command, serve."""
    from dashboard.observability.logs import configure_logging

    configure_logging(Settings.from_env().log_format)  # every command (serve, worker, ...): text, or JSON lines
    if ctx.invoked_subcommand is None:
        ctx.invoke(serve)


@cli.command()
@click.option("--host", default=None, help="Override CITYBRAIN_HOST.")
@click.option("--port", default=None, type=int, help="Override CITYBRAIN_PORT.")
def serve(host: str | None, port: int | None) -> None:
    """Serve the dashboard (builds the demo city first when the store is empty)."""
    from dashboard.commands.serve import serve_app

    settings = Settings.from_env()
    serve_app(settings, host or settings.host, port or settings.port, create_app)


@cli.command("settings")
def show_settings() -> None:
    """List every CITYBRAIN_* setting with its default and meaning."""
    for name, default, help_text in Settings.documented():
        click.echo(f"{name}={default}\n    {help_text}")


@cli.command()
def migrate() -> None:
    """Create or upgrade the store's tables to the newest migration."""
    from data import store

    store.migrate(store.make_engine(Settings.from_env().database_url))
    click.echo("store is up to date")


def _add_area_commands() -> None:
    # Each area keeps its commands in its own module so they stay small and separately owned.
    from dashboard.commands import accounts, admin, apikeys, demo, dispatch, geo, intake, rollup, worker
    from dashboard.commands import warnings as warning_commands

    for module in (demo, geo, intake, apikeys, dispatch, admin, rollup, warning_commands, accounts, worker):
        for command in module.COMMANDS:
            cli.add_command(command)


_add_area_commands()

if __name__ == "__main__":
    cli()
