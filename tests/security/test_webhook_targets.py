"""Webhooks reach only public addresses and what CITYBRAIN_WEBHOOK_ALLOW lists, checked when set and at every
delivery; a redirect is a failed delivery, never followed (item 13)."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from data.accounts.admin.departments import set_department_webhook
from data.errors import ValidationError
from data.incidents import dispatch, lifecycle, webhooks
from data.incidents.webhook_delivery import deliver_due
from data.incidents.webhook_targets import PUBLIC_ONLY, RefusedTarget, WebhookTargets, check_url, poster
from tests.factories import drive_to, make_incident, make_world

SECRET = "s3cret-for-the-test-receiver"
HEADERS = {"Content-Type": "application/json"}
# Where a webhook must never go by default: the server itself, a cloud's metadata service, private networks, multicast.
REFUSED = [
    "http://127.0.0.1:8050/hook",
    "http://localhost/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.20.0.5/hook",
    "https://172.16.3.4/hook",
    "http://192.168.1.2:8080/hook",
    "http://[fd00::5]/hook",
    "http://0.0.0.0/hook",
    "http://224.0.0.1/hook",
    "http://2130706433/hook",  # 127.0.0.1 written as a number
]


class Receiver:
    """An HTTP endpoint on 127.0.0.1 answering POSTs with `status` (and Location to /landed); it records every request."""

    def __init__(self, status: int = 200):
        self.requests: list[tuple[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, code: int) -> None:
                receiver.requests.append((self.command, self.path))
                self.send_response(code)
                if 300 <= code < 400:
                    self.send_header("Location", "/landed")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._answer(status)

            def do_GET(self):
                self._answer(200)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


# The test receiver listens on 127.0.0.1, allowed explicitly as an administrator would allow the departments' network.
LOCAL = WebhookTargets.parse("127.0.0.1")


def test_internal_addresses_are_refused_when_the_url_is_set(engine):
    with engine.begin() as conn:
        world = make_world(conn)
        for url in REFUSED:
            with pytest.raises(ValidationError, match="CITYBRAIN_WEBHOOK_ALLOW"):
                webhooks.set_webhook(conn, world.departments["zj"], url)
        # The audited administration and its command refuse them the same way.
        with pytest.raises(ValidationError, match="loopback"):
            set_department_webhook(conn, "admin", "zj", "http://127.0.0.1:6379/")
        assert webhooks.set_webhook(conn, world.departments["zj"], "https://93.184.216.34/hook")  # a public address


def test_the_allow_list_admits_the_departments_network_and_nothing_else():
    allowed = WebhookTargets.parse(" 10.20.0.0/16, hooks.cgj.example ,*.gov.example, fd00::/8 ")
    for url in ("http://10.20.0.5/hook", "http://[fd00::5]/hook", "https://hooks.cgj.example/x", "https://a.b.gov.example/"):
        check_url(url, allowed)
    for url in ("http://10.21.0.5/hook", "http://127.0.0.1/hook", "http://169.254.169.254/", "http://[fc00::5]/"):
        with pytest.raises(ValidationError):
            check_url(url, allowed)
    assert not allowed.trusts_name("gov.example.evil") and not allowed.trusts_name("evilhooks.cgj.example")
    for bad in ("10.0.0.0/33", "http://x/", "a..b", "*.", "-"):
        with pytest.raises(ValidationError, match="CITYBRAIN_WEBHOOK_ALLOW"):
            WebhookTargets.parse(bad)


def test_the_command_takes_the_allow_list_from_the_setting(sqlite_engine, monkeypatch):
    from app import cli

    with sqlite_engine.begin() as conn:
        make_world(conn)
    monkeypatch.setenv("CITYBRAIN_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    refused = CliRunner().invoke(cli, ["webhook", "set", "zj", "http://10.20.0.5/hook"])
    assert refused.exit_code != 0 and "private address" in refused.output and "CITYBRAIN_WEBHOOK_ALLOW" in refused.output
    monkeypatch.setenv("CITYBRAIN_WEBHOOK_ALLOW", "10.20.0.0/16")
    allowed = CliRunner().invoke(cli, ["webhook", "set", "zj", "http://10.20.0.5/hook"])
    assert allowed.exit_code == 0, allowed.output


def test_every_delivery_checks_the_address_again(receiver, monkeypatch):
    # Allowed when it was set (a name that did not resolve then), it now resolves to this machine.
    real = socket.getaddrinfo

    def rebound(host, *args, **kwargs):
        return real("127.0.0.1" if host == "hooks.cgj.example" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebound)
    port = receiver.server.server_port
    with pytest.raises(RefusedTarget, match="loopback"):
        webhooks.http_post(f"http://hooks.cgj.example:{port}/hook", b"{}", HEADERS, 2)
    with pytest.raises(RefusedTarget, match="loopback"):
        webhooks.http_post(receiver.url, b"{}", HEADERS, 2)  # the default: public addresses only
    assert receiver.requests == []
    assert webhooks.http_post(receiver.url, b"{}", HEADERS, 2, LOCAL) == 200
    assert (
        webhooks.http_post(f"http://hooks.cgj.example:{port}/hook", b"{}", HEADERS, 2, WebhookTargets.parse("hooks.cgj.example"))
        == 200
    )
    assert receiver.requests == [("POST", "/hook"), ("POST", "/hook")]


def _dispatched_to(engine, url: str, targets: WebhookTargets) -> int:
    with engine.begin() as conn:
        world = make_world(conn)
        webhooks.set_webhook(conn, world.departments["zj"], url, secret=SECRET, targets=targets)
        incident_id = make_incident(conn, world.categories["construction"], at=world.lattice.center(0), locator=world.locator)
        drive_to(conn, incident_id, lifecycle.REGISTERED)
    with engine.begin() as conn:
        dispatch.dispatch(conn, incident_id, actor="dispatcher")
    return incident_id


def test_a_delivery_to_a_refused_address_fails_and_says_why(engine, receiver):
    incident_id = _dispatched_to(engine, receiver.url, LOCAL)  # allowed then; the worker runs with the default
    assert deliver_due(engine, post=poster(PUBLIC_ONLY)) == 1
    with engine.connect() as conn:
        (delivery,) = webhooks.deliveries(conn, incident_id=incident_id)
    assert delivery["status"] == "pending" and delivery["attempts"] == 1
    assert "RefusedTarget" in delivery["last_error"] and "loopback" in delivery["last_error"]
    assert receiver.requests == []


def test_a_redirect_is_a_failed_delivery_and_is_not_followed(engine):
    redirecting = Receiver(status=302)
    try:
        incident_id = _dispatched_to(engine, redirecting.url, LOCAL)
        assert deliver_due(engine, post=poster(LOCAL)) == 1
        with engine.connect() as conn:
            (delivery,) = webhooks.deliveries(conn, incident_id=incident_id)
        assert (delivery["status"], delivery["last_error"]) == ("pending", "HTTP 302")
        assert [a["status_code"] for a in delivery["attempts_log"]] == [302]
        assert redirecting.requests == [("POST", "/hook")]  # no GET /landed
    finally:
        redirecting.close()
