"""API keys: created with scopes, stored only as hashes, found, revoked; and the `api-key` commands."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from dashboard.api.keys import limiter_storage_uri
from data import schema
from data.accounts.apikeys import check_rate_limit, create_key, find_key, hash_key, list_keys, revoke_key
from data.errors import NotFound, ValidationError
from tests.factories import make_department


def test_a_key_is_stored_only_as_its_hash_and_found_by_its_secret(engine):
    with engine.begin() as conn:
        make_department(conn, "cg")
        new = create_key(conn, "cg-system", ["actions", "read"], department_code="cg", rate_limit="60/minute")
        stored = conn.execute(select(schema.api_keys)).one()._mapping
    assert new.secret.startswith("cbk_") and len(new.secret) > 40
    assert stored["key_hash"] == hashlib.sha256(new.secret.encode()).hexdigest() == hash_key(new.secret)
    assert all(new.secret not in str(value) for value in stored.values())
    assert stored["prefix"] == new.secret[:12]

    with engine.connect() as conn:
        key = find_key(conn, new.secret)
        assert key == new.key
        assert key.scopes == {"actions", "read"} and key.department_code == "cg" and key.rate_limit == "60/minute"
        assert key.allows("read") and not key.allows("intake")
        assert find_key(conn, new.secret[:-1] + ("A" if new.secret[-1] != "A" else "B")) is None
        assert find_key(conn, "not-a-key") is None and find_key(conn, None) is None


def test_revoking_by_name_id_or_prefix_stops_the_key(engine):
    with engine.begin() as conn:
        keys = [create_key(conn, f"k{i}", "intake") for i in range(3)]
        revoke_key(conn, "k0")
        revoke_key(conn, str(keys[1].key.id))
        revoked = revoke_key(conn, keys[2].secret[:12], now=datetime(2025, 1, 2, tzinfo=UTC))
        assert revoked.revoked_at == datetime(2025, 1, 2, tzinfo=UTC)
        assert revoke_key(conn, "k2").revoked_at == revoked.revoked_at  # twice is harmless
        with pytest.raises(NotFound):
            revoke_key(conn, "nobody")
    with engine.connect() as conn:
        assert all(not find_key(conn, k.secret).active for k in keys)
        assert list_keys(conn, include_revoked=False) == []
        assert [k.name for k in list_keys(conn)] == ["k0", "k1", "k2"]


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("", "read"), {}, "name"),
        (("x", []), {}, "at least one scope"),
        (("x", "read write"), {}, "unknown scope"),
        (("x", "actions"), {}, "bound to one department"),
        (("x", "actions"), {"department_code": "nope"}, "does not exist"),
        (("a name with spaces", "intake"), {}, "needs --source"),
        (("x", "intake"), {"source": "bad source!"}, "source"),
        (("x", "read"), {"rate_limit": "lots"}, "rate limit"),
        (("taken", "read"), {}, "already exists"),
    ],
)
def test_bad_key_requests_are_refused_and_store_nothing(sqlite_engine, args, kwargs, message):
    with sqlite_engine.begin() as conn:
        create_key(conn, "taken", "read")
    with sqlite_engine.begin() as conn, pytest.raises(ValidationError, match=message):
        create_key(conn, *args, **kwargs)
    with sqlite_engine.connect() as conn:
        assert [k.name for k in list_keys(conn)] == ["taken"]


def test_an_intake_key_reports_under_its_name_unless_given_a_source(sqlite_engine):
    with sqlite_engine.begin() as conn:
        assert create_key(conn, "12345", "intake").key.source == "12345"
        assert create_key(conn, "citizen app", "intake", source="app").key.source == "app"


def test_rate_limits_and_their_storage():
    assert check_rate_limit(" 10/second;500/hour ") == "10/second;500/hour"
    with pytest.raises(ValidationError):
        check_rate_limit("10 per fortnight please")
    assert limiter_storage_uri("") == "citybrain-memory://"
    assert limiter_storage_uri("redis://cache:6379/1") == "redis://cache:6379/1"
    assert limiter_storage_uri("unix:///run/redis.sock") == "redis+unix:///run/redis.sock"


def test_the_api_key_commands_create_list_and_revoke(tmp_path, monkeypatch):
    from app import cli

    monkeypatch.setenv("CITYBRAIN_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    runner = CliRunner()
    created = runner.invoke(cli, ["api-key", "create", "--name", "hotline", "--scope", "intake", "--scope", "read"])
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert secret.startswith("cbk_") and "shown only this once" in created.stderr

    listed = runner.invoke(cli, ["api-key", "list"])
    assert listed.exit_code == 0 and "hotline" in listed.output and secret[:12] in listed.output
    assert secret not in listed.output

    refused = runner.invoke(cli, ["api-key", "create", "--name", "dept", "--scope", "actions"])
    assert refused.exit_code != 0 and "department" in refused.output

    revoked = runner.invoke(cli, ["api-key", "revoke", "hotline"])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert "hotline" not in runner.invoke(cli, ["api-key", "list"]).output
    assert "hotline" in runner.invoke(cli, ["api-key", "list", "--all"]).output
    assert runner.invoke(cli, ["api-key", "revoke", "nobody"]).exit_code != 0
