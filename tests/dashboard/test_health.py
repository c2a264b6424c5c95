"""/readyz through a rolling upgrade: a store a newer release has migrated keeps the old servers ready; one behind does not."""

from __future__ import annotations

from sqlalchemy import text

from tests.dashboard.observability.helpers import make_app


def _store_at(engine, revision: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :revision"), {"revision": revision})


def test_readyz_through_a_rolling_upgrade(sqlite_engine):
    client = make_app(sqlite_engine).server.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["migrations"] == "current"

    _store_at(sqlite_engine, "9999_from_a_newer_release")  # `python app.py migrate` of the next release ran first
    ahead = client.get("/readyz")
    assert ahead.status_code == 200 and ahead.get_json()["migrations"] == "ahead"

    _store_at(sqlite_engine, "0001")  # a store this release has not migrated yet
    behind = client.get("/readyz")
    assert behind.status_code == 503 and behind.get_json()["migrations"] == "behind"
