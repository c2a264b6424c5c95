"""`python app.py user ...` and `kiosk ...`, and the demo's users: one per role and a street's dispatcher."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from data import schema, store
from data.accounts import users as accounts
from data.demo.users import DEMO_USERS, STREET_USER, create_demo_users, ensure_demo_users
from tests.factories import make_department, make_world


@pytest.fixture
def cli_store(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("CITYBRAIN_DATABASE_URL", url)
    engine = store.make_engine(url)
    store.migrate(engine)
    with engine.begin() as conn:
        world = make_world(conn)
        street = conn.execute(select(schema.units.c.code).where(schema.units.c.id == world.lattice.street_ids[0])).scalar_one()
    yield engine, street
    engine.dispose()


def run(*args: str):
    from app import cli

    return CliRunner().invoke(cli, list(args))


def test_user_commands_create_list_and_set_a_password(cli_store):
    engine, street = cli_store
    made = run("user", "create", "li", "--role", "dispatcher", "--unit", street, "--password", "long enough", "--actor", "t")
    assert made.exit_code == 0, made.output
    listed = run("user", "list")
    assert "li" in listed.output and "dispatcher" in listed.output and street in listed.output
    assert run("user", "set-password", "li", "--password", "another one", "--actor", "t").exit_code == 0
    with engine.begin() as conn:
        assert accounts.authenticate(conn, "li", "another one")["role"] == "dispatcher"
    bad = run("user", "create", "x y", "--role", "viewer", "--password", "long enough")
    assert bad.exit_code != 0 and "user name" in bad.output


def test_kiosk_commands_print_a_link_once_list_and_revoke(cli_store):
    engine, street = cli_store
    made = run("kiosk", "create", "--label", "wall, room 3", "--unit", street, "--base-url", "https://centre.example")
    assert made.exit_code == 0, made.output
    link = re.search(r"https://centre\.example/kiosk/(cbkiosk_\S+)", made.output)
    assert link
    with engine.begin() as conn:
        assert accounts.resolve_kiosk_token(conn, link.group(1))["label"] == "wall, room 3"
    listed = run("kiosk", "list")
    assert "wall, room 3" in listed.output and street in listed.output and link.group(1) not in listed.output
    token_id = accounts_list(engine)[0]["id"]
    assert run("kiosk", "revoke", str(token_id)).exit_code == 0
    with engine.begin() as conn:
        assert accounts.resolve_kiosk_token(conn, link.group(1)) is None
    assert run("kiosk", "revoke", "999").exit_code != 0
    assert run("kiosk", "create", "--label", "x", "--unit", "nowhere").exit_code != 0


def accounts_list(engine):
    with engine.connect() as conn:
        return accounts.list_kiosk_tokens(conn)


def test_the_demo_has_one_user_per_role_and_a_street_dispatcher(engine):
    with engine.begin() as conn:
        world = make_world(conn)
        make_department(conn, "cgj")
        made = create_demo_users(conn)
        assert {u["role"] for u in made} == set(schema.ROLES)
        again = create_demo_users(conn)  # idempotent: nobody twice
        assert again == []
        street = accounts.get_user_by_username(conn, STREET_USER[0])
        assert street["unit_id"] == world.lattice.street_ids[0] and street["role"] == "dispatcher"
        for username, password, role, _name, _dept in DEMO_USERS:
            assert accounts.authenticate(conn, username, password)["role"] == role
    # A store that is no demo gets no demo users.
    assert ensure_demo_users(engine) == []
