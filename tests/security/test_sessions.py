"""Signing out ends the session on the server (issue 13, item 6): a copied cookie stops working, and nothing but a
POST carrying the CSRF token signs anybody out (not GET /logout, not a bad kiosk link)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from app import create_app
from dashboard.settings import Settings
from data import schema
from data.accounts import users as accounts
from tests.auth_helpers import csrf_from, signed_in_client
from tests.factories import make_world

# What a copied cookie was seen to open after /logout: the page shell's layout and the map's incidents.
PROTECTED = ("/_dash-layout", "/geo/incidents.json?bbox=106,29,107,30")


@pytest.fixture
def app(engine):
    with engine.begin() as conn:
        make_world(conn)
    return create_app(Settings.from_env({}, live=False, build_demo=False), engine=engine, testing=True)


def _copy(app, client):
    """Another browser holding a copy of `client`'s session cookie."""
    thief = app.server.test_client()
    thief.set_cookie("citybrain_session", client.get_cookie("citybrain_session").value)
    return thief


def test_a_cookie_copied_before_sign_out_stops_working_after_it(app):
    client = signed_in_client(app, "viewer")
    thief = _copy(app, client)
    assert [thief.get(path).status_code for path in PROTECTED] == [200, 200]
    signed_out = client.post("/logout", data={"csrf_token": csrf_from(client)})
    assert signed_out.status_code == 302 and "/login" in signed_out.headers["Location"]
    assert [thief.get(path).status_code for path in PROTECTED] == [401, 401]
    assert [client.get(path).status_code for path in PROTECTED] == [401, 401]


def test_the_session_is_a_row_in_the_store_ended_by_signing_out(app, engine):
    client = signed_in_client(app, "viewer")
    with engine.connect() as conn:
        (row,) = conn.execute(select(schema.sessions).where(schema.sessions.c.user_id == client.user["id"])).all()
    assert row.ended_at is None and row.expires_at is not None
    client.post("/logout", data={"csrf_token": csrf_from(client)})
    with engine.connect() as conn:
        ended = conn.execute(select(schema.sessions).where(schema.sessions.c.id == row.id)).one()
    assert ended.ended_at is not None and ended.ended_reason == "signed_out"


def test_get_logout_only_asks(app):
    client = signed_in_client(app, "viewer")
    page = client.get("/logout")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'method="post"' in text and 'id="logout-confirm"' in text and csrf_from(client) in text
    assert client.get("/_dash-layout").status_code == 200  # still signed in


def test_sign_out_without_the_csrf_token_is_refused(app):
    client = signed_in_client(app, "viewer")
    client.environ_base.pop("HTTP_X_CSRFTOKEN")
    assert client.post("/logout").status_code == 403
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert client.get("/_dash-layout").status_code == 200


def test_a_bad_kiosk_link_does_not_sign_the_user_out(app):
    client = signed_in_client(app, "dispatcher")
    assert client.get("/kiosk/cbkiosk_not-a-real-token").status_code == 403
    assert client.get("/kiosk/anything").status_code == 403
    assert client.get("/_dash-layout").status_code == 200


def test_signing_in_again_ends_the_session_it_replaces(app):
    client = signed_in_client(app, "viewer")
    thief = _copy(app, client)
    with app.server.extensions["citybrain"].engine.begin() as conn:
        token, _ = accounts.create_kiosk_token(conn, "wall, room 3", None, "cli:test")
    assert client.get(f"/kiosk/{token}").status_code == 302  # this browser becomes a wall
    assert thief.get("/_dash-layout").status_code == 401  # the user's old session ended with it


def test_a_cookie_from_before_sessions_were_kept_in_the_store_is_refused(app, engine):
    """Cookies of the old form (user id and session version only) cannot be revoked: they no longer sign anyone in."""
    user = signed_in_client(app, "viewer").user
    client = app.server.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = f"u:{user['id']}:{user['session_version']}"
        session["_fresh"] = True
        session["_signed_at"] = time.time()
    assert client.get("/_dash-layout").status_code == 401
