"""The start's warm-up waits for the first page (dashboard/first_page.py); the KPI figures answer meanwhile."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from flask import Flask

from dashboard.first_page import FirstPageGate
from data.metrics import kpis as kpi_statements
from data.metrics import working_set as kpi_set
from tests.factories import make_incident, make_world


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _server(gate: FirstPageGate, hold: threading.Event | None = None, started: threading.Event | None = None) -> Flask:
    server = Flask("gate-test")

    @server.before_request
    def refuse_some():  # as the sign-in gate does: answers before the gate's own hook runs
        from flask import request

        if request.path == "/refused":
            return "no", 401
        return None

    gate.install(server)

    @server.get("/page")
    def page():
        if hold is not None:
            started.set()
            hold.wait(10)
        return "ok"

    return server


def test_the_gate_opens_once_the_first_page_was_answered_and_the_server_is_quiet():
    clock = Clock()
    gate = FirstPageGate(quiet=0.75, max_wait=10.0, clock=clock)
    client = _server(gate).test_client()
    clock.now += 2
    assert not gate.open(), "nothing answered yet: a first page may be on its way"
    assert client.get("/refused").status_code == 401  # answered before the gate counted it: counts as nothing
    assert client.get("/page").status_code == 200
    assert not gate.open(), "just answered: more of the page's requests may follow"
    clock.now += 0.8
    assert gate.open()


def test_a_request_in_flight_holds_the_gate_and_nobody_visiting_opens_it_in_the_end():
    clock = Clock()
    gate = FirstPageGate(quiet=0.75, max_wait=10.0, clock=clock)
    hold, started = threading.Event(), threading.Event()
    client = _server(gate, hold, started).test_client()
    worker = threading.Thread(target=lambda: client.get("/page"))
    worker.start()
    assert started.wait(5)
    clock.now += 5
    assert not gate.open(), "a page request is still being answered"
    hold.set()
    worker.join(5)
    clock.now += 0.8
    assert gate.open()

    idle = FirstPageGate(quiet=0.75, max_wait=10.0, clock=clock)
    assert not idle.open()
    clock.now += 10
    assert idle.open(), "a server nobody opens warms up after MAX_WAIT_SECONDS"


def test_while_the_warm_up_waits_for_the_first_page_the_statements_answer(engine):
    now = datetime(2025, 3, 5, 6, 0, tzinfo=UTC)
    with engine.begin() as conn:
        world = make_world(conn)
        make_incident(conn, world.categories["garbage"], at=world.lattice.center(0), reported_at=now, locator=world.locator)
    release = threading.Event()
    thread = kpi_set.warm(engine, "Asia/Shanghai", when=lambda: release.wait(10))
    working = kpi_set._working_set_of(engine)
    with engine.connect() as conn:
        assert working.loading(), "the warm-up has not begun its load: the set counts as loading"
        assert kpi_set.overview_kpis(conn, None, now, "Asia/Shanghai") == kpi_statements.overview_kpis(
            conn, None, now, "Asia/Shanghai"
        )
        assert working._rows is None, "a request does not load the set itself while the warm-up will"
    release.set()
    thread.join(10)
    assert not working.loading() and working._rows is not None and len(working._rows) == 1
