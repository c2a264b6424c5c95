"""The admin commands (`python app.py admin ...`, and the older webhook/responsibility/api-key ones) change the store through data/accounts/admin/, audited."""

from __future__ import annotations

import getpass

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from data import schema, store
from data.accounts.admin import audit
from tests.factories import make_world


@pytest.fixture
def cli_store(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("CITYBRAIN_DATABASE_URL", url)
    engine = store.make_engine(url)
    store.migrate(engine)
    with engine.begin() as conn:
        world = make_world(conn)
        worker = conn.execute(select(schema.workers.c.code).where(schema.workers.c.id == world.worker_id)).scalar_one()
        district = conn.execute(
            select(schema.units.c.code).where(schema.units.c.id == world.lattice.district_ids[0])
        ).scalar_one()
    yield engine, worker, district
    engine.dispose()


def run(*args: str):
    from app import cli

    return CliRunner().invoke(cli, list(args))


def log(engine) -> list[dict]:
    with engine.connect() as conn:
        return list(reversed(audit.events(conn)))


def test_admin_commands_change_the_store_and_the_audit_log_names_the_cli_actor(cli_store):
    engine, worker, district = cli_store
    steps = [
        ("admin", "department", "create", "swj", "--name", "Water Bureau", "--name-zh", "水务局", "--actor", "alice"),
        ("admin", "category", "limits", "garbage", "--priority", "2", "--ack", "45", "--handle", "300", "--actor", "alice"),
        ("admin", "responsibility", "construction", "swj", "--district", district, "--actor", "alice"),
        ("admin", "duty", "set", worker, "garbage", "water", "--actor", "alice"),
        (
            "admin",
            "user",
            "create",
            "wang",
            "--role",
            "department",
            "--department",
            "zj",
            "--password",
            "long enough",
            "--actor",
            "alice",
        ),
        ("admin", "user", "set", "wang", "--unit", district, "--actor", "alice"),
        ("webhook", "set", "zj", "https://example.org/hook", "--actor", "alice"),
        ("api-key", "create", "--name", "hotline", "--scope", "intake", "--actor", "alice"),
    ]
    for step in steps:
        result = run(*step)
        assert result.exit_code == 0, (step, result.output)
    events = log(engine)
    assert [(e["entity"], e["action"]) for e in events] == [
        ("department", "create"),
        ("category_limits", "set"),
        ("responsibility", "set"),
        ("worker_duties", "set"),
        ("user", "create"),
        ("user", "jurisdiction"),
        ("department", "webhook"),
        ("api_key", "create"),
    ]
    assert {e["actor"] for e in events} == {"cli:alice"}

    listed = run("admin", "category", "list")
    assert listed.exit_code == 0 and "45/300" in listed.output
    assert worker in run("admin", "duty", "list").output and "garbage water" in run("admin", "duty", "list").output
    shown = run("admin", "log", "--entity", "category_limits")
    assert (
        shown.exit_code == 0 and "cli:alice category_limits garbage set" in shown.output and '"ack_minutes": 45' in shown.output
    )
    assert "wang" in run("admin", "user", "list").output


def test_without_actor_the_os_user_is_recorded(cli_store):
    engine, _, _ = cli_store
    assert run("admin", "department", "rename", "cg", "--name", "City Management").exit_code == 0
    (event,) = log(engine)
    assert event["actor"] == f"cli:{getpass.getuser()}" and event["after"]["name_en"] == "City Management"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("admin", "category", "limits", "garbage", "--priority", "2", "--ack", "-5", "--handle", "300"), "more than 0"),
        (
            ("admin", "category", "limits", "nope", "--priority", "2", "--ack", "5", "--handle", "300"),
            "no category with code 'nope'",
        ),
        (("admin", "duty", "set", "nobody", "garbage"), "no grid worker"),
        (("admin", "user", "create", "zhao", "--role", "department", "--password", "long enough"), "needs the department"),
        (("admin", "department", "deactivate", "zj"), "still handles construction"),
        (("responsibility", "garbage", "nowhere", "zj"), "no unit with code 'nowhere'"),
    ],
)
def test_bad_admin_commands_fail_with_a_clear_message_and_store_nothing(cli_store, args, words):
    engine, _, _ = cli_store
    result = run(*args)
    assert result.exit_code != 0 and words in result.output
    assert log(engine) == []
