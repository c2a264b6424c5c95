"""The leaders' review (data/metrics/trends.py) checked against each figure computed independently from the raw incident rows."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from data import schema, times
from data.errors import ValidationError
from data.incidents import lifecycle
from data.incidents.transitions import apply_action
from data.metrics import trends
from data.metrics.review_rules import LeagueThresholds
from tests.factories import make_incident, make_world
from tests.snapshots import seeded

TZ = "Asia/Shanghai"
ZONE = ZoneInfo(TZ)
NOW = datetime(2025, 3, 20, 6, 30, tzinfo=UTC)  # 14:30 in Shanghai
HISTORY_DAYS = 20

ROADS = [
    [],
    ["register"],
    ["reject"],
    ["register", "merge"],
    ["register", "dispatch"],
    ["register", "dispatch", "acknowledge"],
    ["register", "dispatch", "acknowledge", "resolve"],
    ["register", "dispatch", "acknowledge", "resolve", "verify_pass", "rate"],
    ["register", "dispatch", "acknowledge", "resolve", "verify_fail", "dispatch", "acknowledge", "resolve", "verify_pass"],
    ["register", "dispatch", "acknowledge", "resolve", "verify_pass", "rate"],
    ["register", "dispatch", "escalate", "acknowledge", "resolve", "verify_pass", "rate"],
    ["register", "dispatch", "reassign", "acknowledge", "resolve", "verify_pass"],
]
STEPS_MIN = [5, 20, 50, 200, 600, 1500]


@pytest.fixture
def city(engine):
    """A two-district world with a seeded random history over HISTORY_DAYS days ending at NOW."""
    return seeded(engine, "review-history", seed_review_history)


def seed_review_history(engine):
    rng = random.Random(20250320)
    with engine.begin() as conn:
        world = make_world(conn)
        cats = list(world.categories.values())
        grids = len(world.lattice.grid_ids)
        anchor = make_incident(conn, cats[0], at=world.lattice.center(0), reported_at=NOW - timedelta(days=HISTORY_DAYS + 1))
        for _ in range(100):
            reported = NOW - timedelta(minutes=rng.randint(0, HISTORY_DAYS * 24 * 60))
            incident_id = make_incident(
                conn,
                rng.choice(cats),
                at=world.lattice.center(rng.randrange(grids)),
                priority=rng.choice([1, 2, 3]),
                reported_at=reported,
                locator=world.locator,
            )
            t = reported
            for action in rng.choice(ROADS):
                t += timedelta(minutes=rng.choice(STEPS_MIN))
                if t > NOW:
                    break
                kwargs = {"note": "test"} if action in lifecycle.NEEDS_NOTE else {}
                if action == "merge":
                    kwargs["merged_into_id"] = anchor
                if action == "reassign":
                    kwargs["department_id"] = world.departments["zj"]
                if action == "rate":
                    kwargs["satisfaction"] = rng.choice([1, 2, 3, 4, 5, 5])
                apply_action(conn, incident_id, action, actor="test", at=t, **kwargs)
    return world


# --- the reference: plain Python over raw rows, by local calendar dates --------------------------------


def _raw(engine, district_id=None):
    with engine.connect() as conn:
        rows = [{k: times.from_db(v) for k, v in r._mapping.items()} for r in conn.execute(select(schema.incidents))]
    return [r for r in rows if r["state"] != "merged" and (district_id is None or r["district_id"] == district_id)]


def _local_day(t):
    return None if t is None else t.astimezone(ZONE).date()


def _days(n):
    last = NOW.astimezone(ZONE).date()
    return [last - timedelta(days=i) for i in range(n - 1, -1, -1)]


def _percentile(values, q):
    values = sorted(values)
    if not values:
        return None
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def _reference(rows, days):
    """Period totals for the last `days` local days, each from its own definition in docs/metrics.md."""
    span = set(_days(days))

    def inside(t):
        return _local_day(t) in span and t <= NOW

    closed = [r for r in rows if inside(r["closed_at"])]
    rated = [r for r in closed if r["satisfaction"] is not None]
    acked = [r for r in rows if inside(r["acknowledged_at"])]
    waiting = [r for r in rows if r["state"] == "dispatched" and r["acknowledged_at"] is None and inside(r["ack_due_at"])]
    resolved = [r for r in rows if inside(r["resolved_at"])]
    timed = [r for r in resolved if r["handle_due_at"] is not None]
    ack_s = [(r["acknowledged_at"] - r["dispatched_at"]).total_seconds() for r in acked]
    handle_s = [(r["resolved_at"] - r["dispatched_at"]).total_seconds() for r in resolved]

    def rate(part, whole):
        return len(part) / len(whole) if whole else None

    return {
        "received": sum(1 for r in rows if inside(r["reported_at"])),
        "closed": len(closed),
        "response_rate": rate([r for r in acked if not r["ack_late"]], acked + waiting),
        "resolution_rate": rate([r for r in closed if r["reopen_count"] == 0], closed),
        "satisfaction_rate": rate([r for r in rated if r["satisfaction"] >= 4], rated),
        "on_time_rate": rate([r for r in timed if r["resolved_at"] <= r["handle_due_at"]], timed),
        "median_ack_s": _percentile(ack_s, 0.5),
        "p90_ack_s": _percentile(ack_s, 0.9),
        "median_handle_s": _percentile(handle_s, 0.5),
        "p90_handle_s": _percentile(handle_s, 0.9),
        "nobody_came": sum(1 for r in acked if r["ack_late"]) + len(waiting),
    }


def _review(engine, scope=None, **kwargs):
    with engine.connect() as conn:
        return trends.review(conn, scope, NOW, TZ, **kwargs)


# --- tests ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("days", [7, 30])
def test_period_totals_equal_the_definitions(engine, city, days):
    got = _review(engine, days=days)["totals"]
    want = _reference(_raw(engine), days)
    assert want["received"] > 0 and want["closed"] > 0
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-3), key


def test_daily_series_received_closed_and_backlog(engine, city):
    rows = _raw(engine)
    series = _review(engine, days=7, granularity="day")["series"]
    assert [_local_day(b["start"]) for b in series] == _days(7)
    received = Counter(_local_day(r["reported_at"]) for r in rows)
    closed = Counter(_local_day(r["closed_at"]) for r in rows if r["closed_at"])
    for bucket in series:
        day = _local_day(bucket["start"])
        assert bucket["received"] == received[day]
        assert bucket["closed"] == closed[day]
        # Backlog at the end of the day (or now, for today): reported before, not yet closed or rejected.
        end = min(datetime(day.year, day.month, day.day, tzinfo=ZONE) + timedelta(days=1), NOW)
        open_then = [r for r in rows if r["reported_at"] < end and not ((r["closed_at"] or r["rejected_at"] or end) < end)]
        assert bucket["backlog"] == len(open_then)


def test_weeks_and_months_partition_the_period(engine, city):
    total = _review(engine, days=30)["totals"]["received"]
    for granularity in ("week", "month"):
        series = _review(engine, days=30, granularity=granularity)["series"]
        assert sum(b["received"] for b in series) == total
        for bucket in series[1:]:
            local = bucket["start"].astimezone(ZONE)
            assert (local.hour, local.minute) == (0, 0)
            assert local.weekday() == 0 if granularity == "week" else local.day == 1


def test_scope_restricts_every_figure(engine, city):
    district = city.lattice.district_ids[0]
    got = _review(engine, scope=("district", district), days=30)
    want = _reference(_raw(engine, district), 30)
    assert got["totals"]["received"] == want["received"]
    assert got["totals"]["on_time_rate"] == pytest.approx(want["on_time_rate"])
    # Below a district the units compared are its streets; the city compares its districts.
    assert {u["unit_id"] for u in got["units"]} == {city.lattice.street_ids[0]}
    city_units = _review(engine, days=30)["units"]
    assert {u["unit_id"] for u in city_units} == set(city.lattice.district_ids)
    for unit in city_units:
        assert unit["received"] == _reference(_raw(engine, unit["unit_id"]), 30)["received"]


def test_custom_period_and_the_previous_one(engine, city):
    rows = _raw(engine)
    first, last = date(2025, 3, 10), date(2025, 3, 14)
    got = _review(engine, days=None, first=first, last=last)
    assert got["totals"]["received"] == sum(1 for r in rows if first <= _local_day(r["reported_at"]) <= last)
    before = (first - timedelta(days=5), first - timedelta(days=1))
    assert got["previous"]["received"] == sum(1 for r in rows if before[0] <= _local_day(r["reported_at"]) <= before[1])


def test_categories_sectors_and_rising(engine, city):
    rows = _raw(engine)
    got = _review(engine, days=7)
    this = Counter(r["category_id"] for r in rows if _local_day(r["reported_at"]) in set(_days(7)))
    before_days = {d - timedelta(days=7) for d in _days(7)}
    before = Counter(r["category_id"] for r in rows if _local_day(r["reported_at"]) in before_days)
    by_cat = {c["category_id"]: c for c in got["categories"]}
    for cid, n in this.items():
        assert by_cat[cid]["received"] == n and by_cat[cid]["previous"] == before[cid]
    rises = sorted((this[c] - before[c] for c in set(this) | set(before) if this[c] > before[c]), reverse=True)
    assert [r["change"] for r in got["rising"]] == rises
    assert sum(s["received"] for s in got["sectors"]) == got["totals"]["received"]


def test_heat_calendar_counts_local_weekday_and_hour(engine, city):
    rows = _raw(engine)
    heat = _review(engine, days=30)["heat"]
    span = set(_days(30))
    want = Counter(
        (r["reported_at"].astimezone(ZONE).weekday(), r["reported_at"].astimezone(ZONE).hour)
        for r in rows
        if _local_day(r["reported_at"]) in span
    )
    assert {(d, h): heat[d][h] for d in range(7) for h in range(24) if heat[d][h]} == dict(want)


def test_league_cards_follow_shares_not_counts(engine, city):
    rows = _raw(engine)
    strict = LeagueThresholds(min_volume=1, yellow_below_on_time=1.0, yellow_nobody_came=1.0, yellow_no_effect=1.0)
    league = _review(engine, days=30, thresholds=strict)["league"]
    assert league and [d["rank"] for d in league] == list(range(1, len(league) + 1))
    for dep in league:
        mine = [r for r in rows if r["assignee_department_id"] == dep["department_id"]]
        want = _reference(mine, 30)
        assert dep["nobody_came"] == want["nobody_came"]
        assert dep["on_time_rate"] == pytest.approx(want["on_time_rate"])
        # Under a bar of 100% on time, any department below it is carded; one at 100% is not.
        assert (dep["card"] == "yellow") == (dep["on_time_rate"] is not None and dep["on_time_rate"] < 1.0)
    lenient = LeagueThresholds(min_volume=10**6)
    assert all(d["card"] is None for d in _review(engine, days=30, thresholds=lenient)["league"])


def test_hard_cases(engine, city):
    rows = _raw(engine)
    hard = _review(engine, days=30)["hard_cases"]
    open_now = sorted((r for r in rows if r["closed_at"] is None and r["rejected_at"] is None), key=lambda r: r["reported_at"])
    assert [c["id"] for c in hard["longest_open"]] == [r["id"] for r in open_now[:10]]
    assert all(c["escalation_level"] > 0 for c in hard["escalated"]) and hard["escalated"]
    assert all(c["reopen_count"] > 0 for c in hard["most_reopened"]) and hard["most_reopened"]


@pytest.mark.parametrize(
    "kwargs",
    [{"days": 8}, {"granularity": "hour"}, {"days": None, "first": date(2025, 3, 5), "last": date(2025, 3, 1)}],
)
def test_bad_arguments_are_refused(sqlite_engine, kwargs):
    with sqlite_engine.connect() as conn, pytest.raises(ValidationError):
        trends.review(conn, None, NOW, TZ, **kwargs)


def test_thresholds_are_shares():
    with pytest.raises(ValidationError):
        LeagueThresholds(yellow_nobody_came=5)
