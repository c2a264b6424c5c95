"""Accounts in the store: users, roles, jurisdiction, password sign-in with its throttle, kiosk tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from data import schema
from data.accounts import signins
from data.accounts import users as accounts
from data.errors import AuthenticationFailed, NotFound, SignInThrottled, ValidationError
from tests.factories import T0, make_world


@pytest.fixture
def world(engine):
    with engine.begin() as conn:
        return make_world(conn)


def test_create_and_sign_in(engine, world):
    with engine.begin() as conn:
        user = accounts.create_user(conn, "Wang.Li", "correct horse", "dispatcher", unit_id=world.lattice.street_ids[0])
        assert user["username"] == "wang.li" and user["role"] == "dispatcher" and user["active"]
        assert user["unit_level"] == 2 and "password_hash" not in user
        signed_in = accounts.authenticate(conn, "WANG.LI", "correct horse", now=T0)
        assert signed_in["id"] == user["id"] and signed_in["last_login_at"] == T0
        with pytest.raises(AuthenticationFailed, match="wrong user name or password"):
            accounts.authenticate(conn, "wang.li", "wrong horse", now=T0)
        with pytest.raises(AuthenticationFailed, match="wrong user name or password"):
            accounts.authenticate(conn, "nobody", "correct horse", now=T0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"username": "a b", "password": "longenough", "role": "viewer"}, "user name"),
        ({"username": "ab", "password": "short", "role": "viewer"}, "at least 8"),
        ({"username": "ab", "password": "longenough", "role": "king"}, "unknown role"),
        ({"username": "ab", "password": "longenough", "role": "department"}, "needs the department"),
        ({"username": "ab", "password": "longenough", "role": "viewer", "unit_id": 999999}, "does not exist"),
    ],
)
def test_bad_input_is_refused_and_stores_nothing(engine, world, kwargs, message):
    with engine.begin() as conn:
        with pytest.raises(ValidationError, match=message):
            accounts.create_user(conn, **kwargs)
        assert accounts.list_users(conn) == []


def test_taken_name_is_refused(engine, world):
    with engine.begin() as conn:
        accounts.create_user(conn, "ops", "longenough", "viewer")
        with pytest.raises(ValidationError, match="taken"):
            accounts.create_user(conn, "OPS", "longenough2", "admin")


def test_five_wrong_passwords_from_one_address_throttle_that_name_there_for_fifteen_minutes(engine, world):
    here = {"address": "10.0.0.7"}
    with engine.begin() as conn:
        accounts.create_user(conn, "ops", "longenough", "viewer", now=T0 - timedelta(days=1))
        for attempt in range(signins.MAX_FAILURES - 1):
            with pytest.raises(AuthenticationFailed) as info:
                accounts.authenticate(conn, "ops", "nope", now=T0 + timedelta(seconds=attempt), **here)
            assert not isinstance(info.value, SignInThrottled)
        with pytest.raises(SignInThrottled, match="try again in 15 minute"):
            accounts.authenticate(conn, "ops", "nope", now=T0 + timedelta(seconds=10), **here)
        # Even the right password is refused from there meanwhile, so guessing cannot go on ...
        with pytest.raises(SignInThrottled):
            accounts.authenticate(conn, "ops", "longenough", now=T0 + timedelta(minutes=14), **here)
        # ... but the user signs in from their own desk, and from here once the oldest failure is 15 minutes old.
        assert accounts.authenticate(conn, "ops", "longenough", now=T0 + timedelta(minutes=1), address="10.0.0.8")
        assert accounts.authenticate(conn, "ops", "longenough", now=T0 + timedelta(minutes=16), **here)["username"] == "ops"


def test_a_new_password_unlocks_and_ends_sessions(engine, world):
    with engine.begin() as conn:
        user = accounts.create_user(conn, "ops", "longenough", "viewer", now=T0 - timedelta(days=1))
        for _ in range(signins.MAX_FAILURES):
            with pytest.raises(AuthenticationFailed):
                accounts.authenticate(conn, "ops", "nope", now=T0)
        updated = accounts.update_user(conn, user["id"], password="brand new pw", now=T0 + timedelta(seconds=1))
        assert updated["session_version"] == user["session_version"] + 1
        assert accounts.authenticate(conn, "ops", "brand new pw", now=T0 + timedelta(seconds=2))["username"] == "ops"


def test_inactive_user_cannot_sign_in(engine, world):
    with engine.begin() as conn:
        user = accounts.create_user(conn, "ops", "longenough", "viewer")
        accounts.update_user(conn, user["id"], active=False)
        with pytest.raises(AuthenticationFailed, match="wrong user name or password"):
            accounts.authenticate(conn, "ops", "longenough")


def test_update_role_department_and_unit(engine, world):
    with engine.begin() as conn:
        user = accounts.create_user(conn, "ops", "longenough", "viewer")
        dept = accounts.update_user(conn, user["id"], role="department", department_id=world.departments["cg"])
        assert dept["department_code"] == "cg"
        back = accounts.update_user(conn, user["id"], role="leader", unit_id=world.lattice.district_ids[1])
        assert back["department_id"] is None and back["unit_id"] == world.lattice.district_ids[1]
        with pytest.raises(ValidationError, match="only a user of role 'department'"):
            accounts.update_user(conn, user["id"], department_id=world.departments["cg"])
        with pytest.raises(NotFound):
            accounts.update_user(conn, 424242, role="viewer")


def test_kiosk_token_resolves_until_revoked(engine, world):
    street = world.lattice.street_ids[0]
    with engine.begin() as conn:
        token, row = accounts.create_kiosk_token(conn, "wall, room 3", street, "admin", now=T0)
        assert token.startswith(accounts.KIOSK_PREFIX) and row["unit_id"] == street and row["active"]
        resolved = accounts.resolve_kiosk_token(conn, token, now=T0)
        assert resolved["id"] == row["id"] and resolved["last_used_at"] == T0
        assert accounts.resolve_kiosk_token(conn, token + "x") is None
        assert [t["label"] for t in accounts.list_kiosk_tokens(conn)] == ["wall, room 3"]
        revoked = accounts.revoke_kiosk_token(conn, row["prefix"], now=T0)
        assert not revoked["active"]
        assert accounts.resolve_kiosk_token(conn, token) is None
        assert accounts.active_kiosk(conn, row["id"]) is None
        with pytest.raises(NotFound):
            accounts.revoke_kiosk_token(conn, 999)


def test_passwords_are_stored_as_scrypt_hashes_outside_the_test_suite(engine, monkeypatch):
    monkeypatch.setattr(accounts, "PASSWORD_HASH_METHOD", "scrypt")  # the production setting (the suite uses a cheap one)
    with engine.begin() as conn:
        user = accounts.create_user(conn, "hashed", "a long password", "viewer")
        stored = conn.execute(select(schema.users.c.password_hash).where(schema.users.c.id == user["id"])).scalar_one()
        assert stored.startswith("scrypt:") and "a long password" not in stored
        assert accounts.authenticate(conn, "hashed", "a long password")["id"] == user["id"]
