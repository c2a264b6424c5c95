"""The store migrates on both databases and reports its counts."""

from data import schema, store


def test_migrate_creates_every_table_and_counts_are_zero(fresh_engine):
    engine = fresh_engine
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


def test_migrations_have_one_head_and_the_store_is_at_it(fresh_engine):
    engine = fresh_engine
    """A newcomer's `alembic upgrade head` works (no parallel branches left), and migrate() reaches it."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(store.alembic_config(engine))
    heads = script.get_heads()
    assert len(heads) == 1
    with engine.connect() as conn:
        assert set(MigrationContext.configure(conn).get_current_heads()) == set(heads)
