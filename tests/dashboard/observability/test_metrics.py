"""/metrics: requests counted by route template (one process, and summed over processes), streams, feed lag, the store's figures, who may read it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from data import schema, store
from tests.asgi_server import AsgiServer, EventStream
from tests.auth_helpers import cookie_header, signed_in_client
from tests.dashboard.observability.helpers import make_app
from tests.paths import ROOT
from tests.tcp_proxy import TcpProxy

INCIDENT_ROUTE = "/api/v1/incidents/<incident_id>"


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, ((label, value), ...)): value} of an exposition."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(client, **kwargs) -> dict[tuple, float]:
    answer = client.get("/metrics", **kwargs)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return samples(answer.get_data(as_text=True))


def requests_of(figures: dict, route: str, status_class: str) -> float:
    key = ("citybrain_http_requests_total", (("method", "GET"), ("route", route), ("status_class", status_class)))
    return figures.get(key, 0.0)


def test_a_request_is_counted_by_its_route_template_never_its_path(sqlite_engine):
    client = make_app(sqlite_engine).server.test_client()
    before = scrape(client)
    for incident_id in (48213, 48214):
        assert client.get(f"/api/v1/incidents/{incident_id}").status_code == 403  # no key
    after = scrape(client)
    assert requests_of(after, INCIDENT_ROUTE, "4xx") == requests_of(before, INCIDENT_ROUTE, "4xx") + 2
    latency = ("citybrain_http_request_duration_seconds_count", (("method", "GET"), ("route", INCIDENT_ROUTE)))
    assert after[latency] == before.get(latency, 0.0) + 2
    assert not [key for key in after if "48213" in str(key)]  # ids never become label values
    assert requests_of(after, "/metrics", "2xx") >= 1


_WORKER = textwrap.dedent(
    """
    import sys
    from app import create_app
    from dashboard.settings import Settings

    app = create_app(Settings.from_env({}, database_url=sys.argv[1], live=False, build_demo=False), testing=True)
    client = app.server.test_client()
    for _ in range(int(sys.argv[2])):
        client.get("/api/v1/incidents/7")
    if sys.argv[3] == "scrape":
        sys.stdout.write(client.get("/metrics").get_data(as_text=True))
    """
)


def test_under_prometheus_multiproc_dir_every_processs_requests_are_summed(sqlite_engine, tmp_path):
    """Two processes, as two gunicorn workers: whichever answers /metrics shows both figures."""
    url = sqlite_engine.url.render_as_string(hide_password=False)
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))

    def worker(requests: int, then: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", _WORKER, url, str(requests), then],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=True,
        )
        return done.stdout

    worker(3, "exit")
    figures = samples(worker(2, "scrape"))
    assert requests_of(figures, INCIDENT_ROUTE, "4xx") == 5
    assert figures[("citybrain_store_up", ())] == 1


def _figure(client, name: str) -> float:
    return scrape(client)[(name, ())]


def _wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_open_streams_are_counted_in_and_out(engine):
    app = make_app(engine)
    scraper, viewer = app.server.test_client(), signed_in_client(app, "viewer")
    before = _figure(scraper, "citybrain_live_streams_open")
    with AsgiServer(app) as served:
        stream = EventStream(served.url, "/live/events", headers=cookie_header(viewer))
        try:
            stream.next_frame()  # the stream is open
            assert _figure(scraper, "citybrain_live_streams_open") == before + 1
            assert 0 <= _figure(scraper, "citybrain_feed_lag_seconds") < 1
        finally:
            stream.close()
        _wait_for(lambda: _figure(scraper, "citybrain_live_streams_open") == before, 10, "the stream was never counted out")
        assert _figure(scraper, "citybrain_feed_lag_seconds") == 0  # no screen left to be late for


@pytest.mark.postgres
def test_feed_lag_grows_while_the_store_does_not_answer_and_falls_when_it_does(pg_engine):
    with store.reading(pg_engine) as conn:
        schema_name = conn.execute(text("SELECT current_schema()")).scalar_one()
    with TcpProxy(pg_engine.url.port or 5432) as proxy:
        engine = store.make_engine(
            pg_engine.url.set(port=proxy.port).render_as_string(hide_password=False),
            connect_args={"options": f"-csearch_path={schema_name}"},
        )
        app = make_app(engine)
        scraper, viewer = app.server.test_client(), signed_in_client(app, "viewer")
        try:
            with AsgiServer(app) as served:
                stream = EventStream(served.url, "/live/events", headers=cookie_header(viewer))
                try:
                    stream.next_frame()
                    assert _figure(scraper, "citybrain_feed_lag_seconds") < 1
                    proxy.cut()
                    _wait_for(lambda: _figure(scraper, "citybrain_feed_lag_seconds") >= 3, 20, "the lag never grew")
                    assert _figure(scraper, "citybrain_store_up") == 0
                    proxy.restore()
                    _wait_for(lambda: _figure(scraper, "citybrain_feed_lag_seconds") < 1, 20, "the lag never fell")
                finally:
                    stream.close()
        finally:
            engine.dispose()


def test_background_jobs_and_the_webhook_outbox_are_read_from_the_store(sqlite_engine):
    started = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    with sqlite_engine.begin() as conn:
        conn.execute(
            schema.job_runs.insert(),
            [
                dict(
                    job="warnings",
                    holder="w1:12",
                    started_at=started,
                    finished_at=started + timedelta(seconds=2),
                    duration_ms=2500,
                    error=None,
                    runs=40,
                    failures=1,
                    interval_s=60,
                ),
                dict(
                    job="webhooks",
                    holder="w1:12",
                    started_at=started,
                    finished_at=started,
                    duration_ms=10,
                    error="HTTP 500",
                    runs=7,
                    failures=3,
                    interval_s=1,
                ),
            ],
        )
    figures = scrape(make_app(sqlite_engine).server.test_client())
    job = (("job", "warnings"),)
    assert figures[("citybrain_job_last_started_timestamp_seconds", job)] == started.timestamp()
    assert figures[("citybrain_job_last_duration_seconds", job)] == 2.5
    assert figures[("citybrain_job_runs_total", job)] == 40
    assert figures[("citybrain_job_last_failed", job)] == 0
    assert figures[("citybrain_job_last_failed", (("job", "webhooks"),))] == 1
    assert figures[("citybrain_webhook_outbox", (("status", "pending"),))] == 0
    assert figures[("citybrain_store_up", ())] == 1


def test_a_store_that_does_not_answer_is_store_up_0_not_a_failed_scrape(sqlite_engine):
    app = make_app(sqlite_engine)
    app.server.extensions["citybrain"].engine = store.make_engine(
        "postgresql://postgres@127.0.0.1:1/nowhere", connect_args={"connect_timeout": 1}
    )
    figures = scrape(app.server.test_client())
    assert figures[("citybrain_store_up", ())] == 0
    assert ("citybrain_feed_head", ()) not in figures


# --- who may read it -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "remote", "forwarded", "allowed"),
    [
        ({}, "127.0.0.1", None, True),  # the scraper on the same machine
        ({}, "::1", None, True),
        ({}, "10.0.0.5", None, False),  # another machine, not named in the setting
        ({}, "127.0.0.1", "203.0.113.5", False),  # through a proxy the app was not told about: not loopback
        ({"metrics_allow": "10.0.0.0/8"}, "10.0.0.5", None, True),
        ({"metrics_allow": "10.0.0.0/8"}, "127.0.0.1", None, False),  # the setting replaces the default
        ({"metrics_allow": "10.0.0.0/8", "trusted_proxies": 1}, "127.0.0.1", "10.0.0.5", True),  # nginx, then the scraper
        ({"trusted_proxies": 1}, "127.0.0.1", "203.0.113.5", False),  # the internet through nginx
        ({"metrics_allow": ""}, "127.0.0.1", None, False),  # administrators only
    ],
)
def test_who_may_read_metrics_without_signing_in(sqlite_engine, settings, remote, forwarded, allowed):
    client = make_app(sqlite_engine, **settings).server.test_client()
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    answer = client.get("/metrics", headers=headers, environ_base={"REMOTE_ADDR": remote})
    assert answer.status_code == (200 if allowed else 403)
    if not allowed:
        assert answer.get_json()["request_id"] == answer.headers["X-Request-ID"]


def test_an_administrator_may_read_metrics_from_anywhere_others_may_not(sqlite_engine):
    app = make_app(sqlite_engine, metrics_allow="")
    for role, status in (("admin", 200), ("leader", 403)):
        client = signed_in_client(app, role)
        assert client.get("/metrics", environ_base={"REMOTE_ADDR": "198.51.100.20"}).status_code == status


def test_a_malformed_allow_list_is_refused_at_start(sqlite_engine):
    with pytest.raises(ValueError, match="CITYBRAIN_METRICS_ALLOW"):
        make_app(sqlite_engine, metrics_allow="10.0.0.0/8, intranet")
