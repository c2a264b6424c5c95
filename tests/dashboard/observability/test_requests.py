"""Every request's id (X-Request-ID in and out, in error bodies) and the trusted-proxy setting (the client's address behind nginx)."""

from __future__ import annotations

import json
import re

import pytest

from dashboard.api.keys import CONFIG_ANONYMOUS_LIMIT
from data import store
from tests.auth_helpers import signed_in_client
from tests.dashboard.observability.helpers import logged, make_app

GENERATED = re.compile(r"[0-9a-f]{32}")


def _unreachable():
    return store.make_engine("postgresql://postgres@127.0.0.1:1/nowhere", connect_args={"connect_timeout": 1})


def test_a_sane_incoming_request_id_is_kept_and_returned(sqlite_engine):
    client = make_app(sqlite_engine).server.test_client()
    answer = client.get("/login", headers={"X-Request-ID": "4bf92f3577b34da6a3ce929d0e0e4736"})
    assert answer.headers["X-Request-ID"] == "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize("presented", [None, "", "two words", "x" * 129, 'a"quote', "-leading-dash", "ünï"])
def test_without_a_sane_request_id_one_is_made(sqlite_engine, presented):
    client = make_app(sqlite_engine).server.test_client()
    headers = {} if presented is None else {"X-Request-ID": presented}
    first, second = client.get("/login", headers=headers), client.get("/login", headers=headers)
    assert GENERATED.fullmatch(first.headers["X-Request-ID"])
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


def test_api_error_bodies_carry_the_request_id(sqlite_engine):
    client = make_app(sqlite_engine).server.test_client()
    answer = client.get("/api/v1/no-such-thing", headers={"X-Request-ID": "api-err-1"})
    assert answer.status_code == 404 and answer.headers["X-Request-ID"] == "api-err-1"
    assert answer.get_json()["error"]["request_id"] == "api-err-1"
    assert answer.get_json()["error"]["code"] == "not_found"


def test_a_store_that_cannot_be_reached_answers_503_with_the_request_id(sqlite_engine):
    app = make_app(sqlite_engine)
    client = signed_in_client(app, "viewer")
    app.server.extensions["citybrain"].engine = _unreachable()
    for path in ("/healthz", "/readyz", "/_dash-layout"):  # the last: the sign-in check cannot read the store
        answer = client.get(path, headers={"X-Request-ID": f"outage{len(path)}"})
        assert answer.status_code == 503, path
        assert answer.get_json()["request_id"] == f"outage{len(path)}", path


def _limited_app(sqlite_engine, trusted_proxies: int):
    app = make_app(sqlite_engine, trusted_proxies=trusted_proxies)
    app.server.config[CONFIG_ANONYMOUS_LIMIT] = "2/minute"
    return app.server.test_client()


def _statuses(client, forwarded_for: str, n: int) -> list[int]:
    return [client.get("/api/v1/incidents", headers={"X-Forwarded-For": forwarded_for}).status_code for _ in range(n)]


def test_behind_one_trusted_proxy_rate_limits_and_logs_see_the_forwarded_client(sqlite_engine):
    client = _limited_app(sqlite_engine, trusted_proxies=1)
    with logged("json") as lines:
        # nginx appends the address it saw: the last entry is the client's, what a client wrote before it is not trusted.
        assert _statuses(client, "6.6.6.6, 203.0.113.5", 3) == [403, 403, 429]  # no key: refused, then limited
        assert _statuses(client, "203.0.113.5, 198.51.100.9", 1) == [403]  # another client: its own allowance
    clients = [json.loads(line)["client"] for line in lines.getvalue().splitlines() if "citybrain.access" in line]
    assert clients == ["203.0.113.5"] * 3 + ["198.51.100.9"]


def test_without_trusted_proxies_forwarded_for_is_ignored(sqlite_engine):
    client = _limited_app(sqlite_engine, trusted_proxies=0)
    with logged("json") as lines:
        assert _statuses(client, "203.0.113.5", 2) == [403, 403]
        assert _statuses(client, "198.51.100.9", 1) == [429]  # the same caller as far as the app can tell
    clients = {json.loads(line)["client"] for line in lines.getvalue().splitlines() if "citybrain.access" in line}
    assert clients == {"127.0.0.1"}


def test_a_request_refused_by_the_earliest_guard_still_carries_its_id_and_access_line(sqlite_engine):
    client = make_app(sqlite_engine).server.test_client()
    with logged("json") as lines:
        answer = client.post(
            "/_dash-update-component",
            data="[" * 500 + "]" * 500,
            content_type="application/json",
            headers={"X-Request-ID": "early-1"},
        )
    assert answer.status_code == 400 and answer.headers["X-Request-ID"] == "early-1"
    access = [json.loads(line) for line in lines.getvalue().splitlines() if "citybrain.access" in line]
    assert [(line["request_id"], line["status"]) for line in access] == [("early-1", 400)]
