"""Sign-in abuse (issue 13, item 9): the answer never tells which accounts exist, nobody can lock another user out,
and failed attempts are rate-limited per client address (in Redis when the cache is Redis, shared by every worker)."""

from __future__ import annotations

import re
import socket
import uuid

import pytest

from app import create_app
from dashboard.settings import Settings
from data.accounts import signins
from data.accounts import users as accounts
from tests.auth_helpers import make_user, sign_in
from tests.conftest import skip_or_fail

REDIS_URL = "redis://127.0.0.1:6379/0"


def _app(engine, **settings):
    return create_app(Settings.from_env({}, live=False, build_demo=False, **settings), engine=engine, testing=True)


def _client(app, address: str):
    client = app.server.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _message(response) -> str:
    found = re.search(r'id="login-message">([^<]*)<', response.get_data(as_text=True))
    return found.group(1) if found else ""


def test_an_unknown_name_is_answered_exactly_like_a_known_one(sqlite_engine):
    app = _app(sqlite_engine)
    make_user(sqlite_engine, "admin", username="chief")
    answers = {}
    for name in ("chief", "nobody-here"):
        client = _client(app, "10.1.0.1")
        answers[name] = [(r.status_code, _message(r)) for r in (sign_in(client, name, "wrong guess") for _ in range(7))]
    assert answers["chief"] == answers["nobody-here"]
    statuses = [status for status, _ in answers["chief"]]
    assert statuses == [401] * (signins.MAX_FAILURES - 1) + [429] * (8 - signins.MAX_FAILURES)


def test_a_wrong_name_costs_a_password_check_like_a_wrong_password(sqlite_engine, monkeypatch):
    """Similar time: one password hash is checked either way (scrypt is what takes the time)."""
    make_user(sqlite_engine, "viewer", username="ops")
    checked = []
    original = accounts.check_password_hash
    monkeypatch.setattr(accounts, "check_password_hash", lambda h, p: checked.append(h) or original(h, p))
    for name in ("ops", "not-a-user"):
        with sqlite_engine.begin() as conn, pytest.raises(accounts.AuthenticationFailed):
            accounts.authenticate(conn, name, "wrong guess", address="10.1.0.2")
    assert len(checked) == 2


def test_a_stranger_guessing_cannot_lock_the_user_out(sqlite_engine):
    app = _app(sqlite_engine)
    make_user(sqlite_engine, "admin", username="chief")
    stranger = _client(app, "203.0.113.9")
    for _ in range(signins.MAX_FAILURES * 2):
        sign_in(stranger, "chief", "guess")
    assert sign_in(stranger, "chief").status_code == 429  # the stranger's own address is throttled ...
    assert sign_in(_client(app, "10.1.0.3"), "chief").status_code == 302  # ... the administrator is not


def test_failed_attempts_are_rate_limited_per_address(sqlite_engine):
    app = _app(sqlite_engine, signin_rate_limit="6/minute")
    make_user(sqlite_engine, "viewer", username="ops")
    guesser = _client(app, "198.51.100.7")
    # Different names each time, so the per-name throttle never starts: only the address limit stops this.
    answers = [sign_in(guesser, f"user{i}", "guess") for i in range(8)]
    assert [a.status_code for a in answers] == [401] * 6 + [429] * 2
    refused = answers[-1]
    assert "Too many sign-in attempts from this address" in refused.get_data(as_text=True)
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert sign_in(guesser, "ops").status_code == 429  # even the right password, from there, for now
    assert sign_in(_client(app, "198.51.100.8"), "ops").status_code == 302  # another address is not held up
    # Successful sign-ins are not counted: a whole shift behind one address signs in.
    shift = _client(app, "10.1.0.4")
    assert [sign_in(shift, "ops").status_code for _ in range(10)] == [302] * 10


def test_bad_kiosk_links_count_against_the_address_too(sqlite_engine):
    app = _app(sqlite_engine, signin_rate_limit="3/minute")
    client = _client(app, "198.51.100.20")
    assert [client.get(f"/kiosk/cbkiosk_guess{i}").status_code for i in range(5)] == [403, 403, 403, 429, 429]


@pytest.mark.redis
def test_the_address_limit_is_shared_by_every_worker_through_redis(sqlite_engine):
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        skip_or_fail("no Redis server at 127.0.0.1:6379")
    workers = [_app(sqlite_engine, signin_rate_limit="4/minute", cache_url=REDIS_URL) for _ in range(2)]
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    first, second = (_client(w, address) for w in workers)
    assert [sign_in(first, f"n{i}", "guess").status_code for i in range(2)] == [401, 401]
    assert [sign_in(second, f"m{i}", "guess").status_code for i in range(3)] == [401, 401, 429]
    assert sign_in(first, "x", "guess").status_code == 429
