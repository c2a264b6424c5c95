"""Overview metrics checked against figures computed independently in Python from the raw incident rows."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from data import schema, times
from data.errors import ValidationError
from data.incidents import clock, lifecycle
from data.incidents.transitions import apply_action
from data.metrics.board import FLAG_RANK, BoardThresholds, department_board
from data.metrics.kpis import KPI_NAMES, overview_kpis
from data.metrics.overview_charts import breakdown, trend_24h
from data.metrics.scope import day_window, normalise_args, normalise_scope
from tests.factories import make_incident, make_world
from tests.snapshots import seeded

TZ = "Asia/Shanghai"
# 14:30 in Shanghai: today began at 2025-03-04 16:00 UTC.
NOW = datetime(2025, 3, 5, 6, 30, tzinfo=UTC)
TODAY_START = datetime(2025, 3, 4, 16, 0, tzinfo=UTC)

# Roads an incident may take; the history stops wherever the clock passes NOW.
SCENARIOS = [
    [],
    ["register"],
    ["reject"],
    ["register", "merge"],
    ["register", "dispatch"],
    ["register", "dispatch", "acknowledge"],
    ["register", "dispatch", "return"],
    ["register", "dispatch", "return", "reject"],
    ["register", "dispatch", "acknowledge", "resolve"],
    ["register", "dispatch", "acknowledge", "resolve", "verify_pass"],
    ["register", "dispatch", "acknowledge", "resolve", "verify_pass", "rate"],
    [
        "register",
        "dispatch",
        "acknowledge",
        "resolve",
        "verify_fail",
        "dispatch",
        "acknowledge",
        "resolve",
        "verify_pass",
        "rate",
    ],
    ["register", "dispatch", "acknowledge", "resolve", "verify_fail"],
    ["register", "dispatch", "reassign", "acknowledge", "resolve", "verify_pass"],
    ["register", "dispatch", "acknowledge", "extend", "resolve", "verify_pass", "rate"],
    ["register", "dispatch", "escalate", "acknowledge"],
]
STEPS_MIN = [2, 10, 30, 90, 240, 700]


def _action_kwargs(action, rng, world, anchor_id):
    kwargs = {"note": f"test {action}"} if action in lifecycle.NEEDS_NOTE else {}
    if action == "merge":
        kwargs["merged_into_id"] = anchor_id
    if action == "reassign":
        kwargs["department_id"] = world.departments["zj"]
    if action == "extend":
        kwargs["extend_minutes"] = 120
    if action == "rate":
        kwargs["satisfaction"] = rng.choice([1, 2, 3, 4, 5, 5])
    return kwargs


@pytest.fixture
def city(engine):
    return seeded(engine, "kpis-history", seed_history)


def seed_history(engine):
    """A small world with a seeded random three-day history ending at NOW, plus hand-placed edge cases."""
    rng = random.Random(20250305)
    with engine.begin() as conn:
        world = make_world(conn)
        cats = list(world.categories.values())
        grids = len(world.lattice.grid_ids)
        anchor = make_incident(
            conn, cats[0], at=world.lattice.center(0), reported_at=NOW - timedelta(days=4), locator=world.locator
        )
        for _ in range(90):
            reported = NOW - timedelta(minutes=rng.randint(0, 3 * 24 * 60))
            at = world.lattice.outside() if rng.random() < 0.1 else world.lattice.center(rng.randrange(grids))
            incident_id = make_incident(
                conn, rng.choice(cats), at=at, priority=rng.choice([1, 2, 3]), reported_at=reported, locator=world.locator
            )
            t = reported
            for action in rng.choice(SCENARIOS):
                t += timedelta(minutes=rng.choice(STEPS_MIN))
                if t > NOW:
                    break
                apply_action(conn, incident_id, action, actor="test", at=t, **_action_kwargs(action, rng, world, anchor))
        _edge_cases(conn, world)
    return world


def _edge_cases(conn, world):
    garbage = world.categories["garbage"]
    here = world.lattice.center(1)

    def dispatched(minutes_ago: float, priority: int, acknowledge: bool = False):
        start = NOW - timedelta(minutes=minutes_ago)
        incident_id = make_incident(conn, garbage, at=here, priority=priority, reported_at=start - timedelta(minutes=2))
        apply_action(conn, incident_id, "register", actor="t", at=start - timedelta(minutes=1))
        apply_action(conn, incident_id, "dispatch", actor="t", at=start)
        if acknowledge:
            apply_action(conn, incident_id, "acknowledge", actor="t", at=start + timedelta(minutes=1))

    # Just either side of local midnight in Shanghai (16:00 UTC).
    make_incident(conn, garbage, at=here, reported_at=TODAY_START - timedelta(seconds=1))
    make_incident(conn, garbage, at=here, reported_at=TODAY_START)
    # Priority 1 acknowledge limit 15 min: 1 min left is near due, 1 min past is overdue.
    dispatched(14, 1)
    dispatched(16, 1)
    # Priority 3 handling limit 24 h: exactly 2 h left is near due, 2 h 1 min left is not.
    dispatched(22 * 60, 3, acknowledge=True)
    dispatched(22 * 60 - 1, 3, acknowledge=True)
    # Unlocated, reported today and at the same time yesterday, still open.
    make_incident(conn, garbage, at=world.lattice.outside(), reported_at=NOW - timedelta(hours=1))
    make_incident(conn, garbage, at=world.lattice.outside(), reported_at=NOW - timedelta(hours=25))


# --- the reference: plain Python over raw rows ---------------------------------------------------------


def _rows(engine):
    with engine.connect() as conn:
        incidents = [{k: times.from_db(v) for k, v in r._mapping.items()} for r in conn.execute(select(schema.incidents))]
        events = [{k: times.from_db(v) for k, v in r._mapping.items()} for r in conn.execute(select(schema.incident_events))]
    return incidents, events


def _in(t, start, end):
    return t is not None and start <= t <= end


def _state_at(row, t):
    """The clock-running state of the row's current assignee cycle at instant t (None when no clock ran)."""
    d = row["dispatched_at"]
    if d is None or d > t:
        return None
    if row["returned_at"] is not None and d <= row["returned_at"] <= t:
        return None
    if row["acknowledged_at"] is None or row["acknowledged_at"] > t:
        return "dispatched"
    if row["resolved_at"] is None or row["resolved_at"] > t:
        return "acknowledged"
    return None


def _open_at(row, t):
    if row["reported_at"] > t:
        return False
    ended = {"closed": row["closed_at"], "rejected": row["rejected_at"], "merged": row["updated_at"]}.get(row["state"])
    return ended is None or ended > t


def _as_at(row, t):
    return {**row, "state": _state_at(row, t) or "none"}


def _median(values):
    return statistics.median(values) if values else None


def reference_kpis(rows, now, tz):
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    ts = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    ys, yn = ts - timedelta(days=1), now - timedelta(days=1)  # Shanghai has no DST
    spans = {"value": (ts, now), "yesterday": (ys, yn)}
    out = {name: {} for name in KPI_NAMES}
    for key, (a, b) in spans.items():
        t = b
        is_open = (lambda r: r["is_open"]) if key == "value" else (lambda r, t=t: _open_at(r, t))
        as_at = (lambda r: r) if key == "value" else (lambda r, t=t: _as_at(r, t))
        closed = [r for r in rows if _in(r["closed_at"], a, b)]
        timed = [r for r in closed if r["resolved_at"] and r["handle_due_at"]]
        rated = [r for r in closed if r["satisfaction"] is not None]
        out["open_backlog"][key] = sum(1 for r in rows if is_open(r))
        out["new_today"][key] = sum(1 for r in rows if _in(r["reported_at"], a, b))
        out["closed_today"][key] = len(closed)
        out["overdue"][key] = sum(1 for r in rows if clock.is_overdue(as_at(r), t))
        out["near_due"][key] = sum(1 for r in rows if clock.is_near_due(as_at(r), t))
        out["on_time_rate"][key] = sum(r["resolved_at"] <= r["handle_due_at"] for r in timed) / len(timed) if timed else None
        out["median_ack_s"][key] = _median(
            [(r["acknowledged_at"] - r["dispatched_at"]).total_seconds() for r in rows if _in(r["acknowledged_at"], a, b)]
        )
        out["median_handle_s"][key] = _median(
            [(r["resolved_at"] - r["dispatched_at"]).total_seconds() for r in rows if _in(r["resolved_at"], a, b)]
        )
        out["satisfaction_rate"][key] = sum(r["satisfaction"] >= 4 for r in rated) / len(rated) if rated else None
        out["satisfaction_mean"][key] = sum(r["satisfaction"] for r in rated) / len(rated) if rated else None
        out["unlocated_open"][key] = sum(1 for r in rows if r["unlocated"] and is_open(r))
        out["unlocated_today"][key] = sum(1 for r in rows if r["unlocated"] and _in(r["reported_at"], a, b))
    return out


def _assert_kpis_match(got, expected):
    assert set(got) == set(KPI_NAMES)
    for name in KPI_NAMES:
        for key in ("value", "yesterday"):
            want, have = expected[name][key], got[name][key]
            if want is None:
                assert have is None, (name, key)
            else:
                # SQLite measures times to the millisecond.
                assert have == pytest.approx(want, abs=0.01), (name, key, have, want)
        if got[name]["value"] is not None and got[name]["yesterday"] is not None:
            assert got[name]["delta"] == pytest.approx(got[name]["value"] - got[name]["yesterday"])


# --- tests ----------------------------------------------------------------------------------------------


def test_kpis_match_python_reference_for_city_and_district(engine, city):
    rows, _ = _rows(engine)
    with engine.connect() as conn:
        got = overview_kpis(conn, None, NOW, TZ)
        _assert_kpis_match(got, reference_kpis(rows, NOW, TZ))
        district = city.lattice.district_ids[1]
        got_d = overview_kpis(conn, ("district", district), NOW, TZ)
        _assert_kpis_match(got_d, reference_kpis([r for r in rows if r["district_id"] == district], NOW, TZ))
    # The seeded history is rich enough that every figure is exercised (no vacuous comparison).
    for name in ("open_backlog", "new_today", "closed_today", "overdue", "near_due", "unlocated_open", "unlocated_today"):
        assert got[name]["value"] > 0 and got[name]["yesterday"] > 0, name
    for name in ("on_time_rate", "median_ack_s", "median_handle_s", "satisfaction_rate", "satisfaction_mean"):
        assert got[name]["value"] is not None and got[name]["yesterday"] is not None, name


def test_today_starts_at_local_midnight(engine, city):
    rows, _ = _rows(engine)
    with engine.connect() as conn:
        got = overview_kpis(conn, None, NOW, TZ)
    expected = sum(1 for r in rows if TODAY_START <= r["reported_at"] <= NOW)
    assert got["new_today"]["value"] == expected
    # A UTC day would have started 8 hours later and counted fewer.
    assert expected > sum(1 for r in rows if datetime(2025, 3, 5, tzinfo=UTC) <= r["reported_at"] <= NOW)
    assert day_window(NOW, TZ).today_start == TODAY_START


def test_overdue_and_near_due_follow_the_clock(engine, city):
    rows, _ = _rows(engine)
    with engine.connect() as conn:
        got = overview_kpis(conn, None, NOW, TZ)
    assert got["overdue"]["value"] == sum(clock.is_overdue(r, NOW) for r in rows)
    assert got["near_due"]["value"] == sum(clock.is_near_due(r, NOW) for r in rows)
    # The hand-placed cases: one minute left of 15 is near due; exactly two hours left of 24 is too.
    near = [r for r in rows if clock.is_near_due(r, NOW)]
    remaining = sorted(round(((clock.active_due_at(r) - NOW).total_seconds()) / 60) for r in near)
    assert 1 in remaining and 120 in remaining


def test_later_now_changes_only_what_it_should(engine, city):
    with engine.connect() as conn:
        before = overview_kpis(conn, None, NOW, TZ)
        later = overview_kpis(conn, None, NOW + timedelta(hours=3), TZ)
    # Nothing new happened, but clocks ran on: more is overdue, backlog is unchanged.
    assert later["open_backlog"]["value"] == before["open_backlog"]["value"]
    assert later["overdue"]["value"] > before["overdue"]["value"]


def reference_board(rows, events, now):
    since = now - timedelta(days=7)
    board = {}
    for r in rows:
        dept = r["assignee_department_id"]
        if dept is None:
            continue
        b = board.setdefault(dept, {"open": 0, "overdue": 0, "waiting": 0, "ack": [], "late": 0, "res": [], "on_time": 0})
        if r["is_open"]:
            b["open"] += 1
            b["overdue"] += clock.is_overdue(r, now)
            b["waiting"] += r["state"] == "dispatched" and clock.is_overdue(r, now)
        if _in(r["acknowledged_at"], since, now):
            b["ack"].append((r["acknowledged_at"] - r["dispatched_at"]).total_seconds())
            b["late"] += bool(r["ack_late"])
        if _in(r["resolved_at"], since, now):
            b["res"].append((r["resolved_at"] - r["dispatched_at"]).total_seconds())
            b["on_time"] += r["resolved_at"] <= r["handle_due_at"]
    no_effect = {}
    for e in events:
        if e["action"] == "verify_fail" and _in(e["at"], since, now):
            dept = e["data"]["department_id"]
            no_effect[dept] = no_effect.get(dept, 0) + 1
    return board, no_effect


def test_department_board_matches_python_reference(engine, city):
    rows, events = _rows(engine)
    board, no_effect = reference_board(rows, events, NOW)
    with engine.connect() as conn:
        got = department_board(conn, None, NOW, TZ)
    assert {r["department_id"] for r in got} == set(city.departments.values())
    assert sum(no_effect.values()) > 0 and any(b["late"] for b in board.values())
    for row in got:
        b = board.get(
            row["department_id"], {"open": 0, "overdue": 0, "waiting": 0, "ack": [], "late": 0, "res": [], "on_time": 0}
        )
        assert row["open"] == b["open"]
        assert row["overdue"] == b["overdue"]
        assert row["acknowledged"] == len(b["ack"])
        assert row["resolved"] == len(b["res"])
        assert row["no_show"] == b["late"] + b["waiting"]
        fell_due = len(b["ack"]) + b["waiting"]
        assert row["no_show_share"] == (pytest.approx((b["late"] + b["waiting"]) / fell_due) if fell_due else None)
        resolved = len(b["res"])
        assert row["no_effect_share"] == (pytest.approx(no_effect.get(row["department_id"], 0) / resolved) if resolved else None)
        assert row["no_effect"] == no_effect.get(row["department_id"], 0)
        for key, values in (("median_ack_s", b["ack"]), ("median_handle_s", b["res"])):
            assert row[key] == (pytest.approx(statistics.median(values), abs=0.01) if values else None)
        assert row["on_time_rate"] == (pytest.approx(b["on_time"] / len(b["res"])) if b["res"] else None)


def test_department_board_flags_and_orders_worst_first(engine, city):
    with engine.connect() as conn:
        strict = department_board(
            conn, None, NOW, TZ, BoardThresholds(red_no_show_share=0.01, yellow_no_show_share=0.01, min_volume=1)
        )
        lenient = department_board(
            conn,
            None,
            NOW,
            TZ,
            BoardThresholds(
                red_on_time=0,
                yellow_on_time=0,
                red_overdue_share=2,
                yellow_overdue_share=2,
                red_no_show_share=2,
                yellow_no_show_share=2,
                red_no_effect_share=2,
                yellow_no_effect_share=2,
            ),
        )
    assert [r["flag"] for r in lenient] == ["none"] * len(lenient)
    flags = [r["flag"] for r in strict]
    assert "red" in flags
    ranks = [FLAG_RANK[f] for f in flags]
    assert ranks == sorted(ranks)
    for row in strict:
        assert (row["flag"] == "red") == (
            (row["no_show_share"] or 0) >= 0.01
            or (row["on_time_rate"] is not None and row["on_time_rate"] < 0.8)
            or (row["overdue_share"] or 0) >= 0.2
            or (row["no_effect_share"] or 0) >= 0.15
        )


def test_trend_and_breakdown_match_python_reference(engine, city):
    rows, _ = _rows(engine)
    with engine.connect() as conn:
        trend = trend_24h(conn, None, NOW, TZ)
        parts = breakdown(conn, None, NOW, TZ)
        categories = {r.id: r for r in conn.execute(select(schema.categories))}
    assert len(trend) == 24
    assert trend[-1]["start"] == datetime(2025, 3, 5, 14, 0, tzinfo=ZoneInfo(TZ))
    for bucket in trend:
        start = bucket["start"].astimezone(UTC)
        end = min(start + timedelta(hours=1), NOW + timedelta(microseconds=1))
        assert bucket["received"] == sum(1 for r in rows if start <= r["reported_at"] < end)
        assert bucket["closed"] == sum(1 for r in rows if r["closed_at"] and start <= r["closed_at"] < end)
    assert sum(b["received"] for b in trend) > 0 and sum(b["closed"] for b in trend) > 0

    for entry in parts["by_category"]:
        mine = [r for r in rows if r["category_id"] == entry["category_id"]]
        assert entry["open"] == sum(r["is_open"] for r in mine)
        assert entry["new_today"] == sum(TODAY_START <= r["reported_at"] <= NOW for r in mine)
        assert entry["sector"] == categories[entry["category_id"]].sector
    by_sector = {s["sector"]: s for s in parts["by_sector"]}
    assert list(by_sector) == list(lifecycle.SECTORS)
    for sector, entry in by_sector.items():
        mine = [r for r in rows if categories[r["category_id"]].sector == sector]
        assert entry["open"] == sum(r["is_open"] for r in mine)
    opens = [e["open"] for e in parts["by_category"]]
    assert opens == sorted(opens, reverse=True)


def test_arguments_are_normalised_for_memoising():
    shanghai = datetime(2025, 3, 5, 14, 30, tzinfo=ZoneInfo(TZ))
    assert normalise_args(("district", 7), shanghai, "Asia/Shanghai") == normalise_args(
        (schema.DISTRICT, 7), NOW, ZoneInfo("Asia/Shanghai")
    )
    assert normalise_args(("city", 0), NOW, TZ)[0] is None
    hash(normalise_args(("grid", 3), NOW, TZ))
    hash(BoardThresholds())
    for bad_scope in (("planet", 1), ("district", "x"), 5, (schema.MICRO, 1)):
        with pytest.raises(ValidationError):
            normalise_scope(bad_scope)
    with pytest.raises(ValidationError):
        normalise_args(None, datetime(2025, 3, 5), TZ)
    with pytest.raises(ValidationError):
        normalise_args(None, NOW, "Mars/Olympus")


def test_empty_store_gives_zeros_and_nones(engine):
    with engine.connect() as conn:
        kpis = overview_kpis(conn, None, NOW, TZ)
        assert department_board(conn, None, NOW, TZ) == []
        assert sum(b["received"] for b in trend_24h(conn, None, NOW, TZ)) == 0
    assert kpis["open_backlog"] == {"value": 0, "yesterday": 0, "delta": 0}
    assert kpis["on_time_rate"] == {"value": None, "yesterday": None, "delta": None}
