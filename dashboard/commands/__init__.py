"""Command-line commands of `python app.py`, one module per area, gathered by app.py; `command_store` they share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy import Engine

from dashboard.settings import Settings


@contextmanager
def command_store() -> Iterator[Engine]:
    """The configured store, migrated, for one command; a data-layer error becomes a one-line click error."""
    from data import store
    from data.errors import CityBrainError

    engine = store.make_engine(Settings.from_env().database_url)
    try:
        store.migrate(engine)
        yield engine
    except CityBrainError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
