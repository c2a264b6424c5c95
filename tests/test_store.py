"""The store migrates on both databases and reports its counts."""

from data import schema, store


def test_migrate_creates_every_table_and_counts_are_zero(engine):
    with store.reading(engine) as conn:
        assert store.counts(conn) == {"grids": 0, "incidents": 0, "open_incidents": 0}
        assert store.feed_head(conn) == 0
    with engine.begin() as conn:
        store.set_meta(conn, "city", "test")
        store.set_meta(conn, "city", "test2")
        assert store.get_meta(conn, "city") == "test2"
    assert {t for t in schema.metadata.tables} >= {"units", "incidents", "incident_events"}


def test_migrate_twice_is_harmless(engine):
    store.migrate(engine)
    with store.reading(engine) as conn:
        assert store.counts(conn)["grids"] == 0


def test_postgres_urls_use_psycopg3():
    assert store.normalise_url("postgresql://u@h/db").startswith("postgresql+psycopg://")
    assert store.normalise_url("sqlite:///x.db") == "sqlite:///x.db"
