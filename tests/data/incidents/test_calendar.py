"""The working-hours calendar: its arithmetic (property tests), its text forms, the store, and due times counted in working time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data import times
from data.errors import ValidationError
from data.incidents import calendar as work_calendar
from data.incidents import clock, lifecycle
from data.incidents.calendar import WorkCalendar
from data.incidents.feed import get_incident
from data.incidents.transitions import apply_action
from tests.factories import T0, drive_to, make_incident, make_world, set_limits

SH = ZoneInfo("Asia/Shanghai")
# National Day 2025 in China: 1-8 October off, Sunday 28 September and Saturday 11 October worked (调休).
NATIONAL_DAY = WorkCalendar(
    holidays=work_calendar.parse_dates("2025-10-01..2025-10-08"),
    workdays=work_calendar.parse_dates("2025-09-28,2025-10-11"),
)


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SH)


# --- arithmetic by example ------------------------------------------------------------------------


def test_a_limit_skips_the_lunch_break_the_night_and_the_weekend():
    cal = WorkCalendar()
    # Friday 17:00 + 4 working hours: 1 h on Friday, 3 h on Monday morning -> Monday 12:00 (the close, not 13:30).
    assert cal.add(local(2025, 3, 7, 17, 0), 240) == local(2025, 3, 10, 12, 0)
    # Friday 11:30 + 1 h: half an hour before lunch, half after it.
    assert cal.add(local(2025, 3, 7, 11, 30), 60) == local(2025, 3, 7, 14, 0)
    # Reported at night: the clock starts at 09:00.
    assert cal.add(local(2025, 3, 4, 22, 0), 30) == local(2025, 3, 5, 9, 30)
    # A whole working day is 7.5 hours.
    assert cal.add(local(2025, 3, 4, 9, 0), 450) == local(2025, 3, 4, 18, 0)


def test_holidays_are_skipped_and_make_up_days_are_worked():
    # Saturday 27 Sept 17:00 is a weekend evening; Sunday 28 Sept is a make-up working day.
    assert NATIONAL_DAY.add(local(2025, 9, 27, 17, 0), 60) == local(2025, 9, 28, 10, 0)
    # Tuesday 30 Sept 17:00 + 2 h: 1 h that day, then 1-8 Oct off, 9 Oct (Thursday) 10:00.
    assert NATIONAL_DAY.add(local(2025, 9, 30, 17, 0), 120) == local(2025, 10, 9, 10, 0)
    # Without the calendar's lists the same limit is due on Wednesday 1 Oct.
    assert WorkCalendar().add(local(2025, 9, 30, 17, 0), 120) == local(2025, 10, 1, 10, 0)
    assert NATIONAL_DAY.is_working_day(date(2025, 10, 11)) and not NATIONAL_DAY.is_working_day(date(2025, 10, 3))


def test_working_time_between_counts_only_working_hours():
    cal = WorkCalendar()
    assert cal.working_time_between(local(2025, 3, 7, 17, 0), local(2025, 3, 10, 12, 0)) == timedelta(hours=4)
    assert cal.working_time_between(local(2025, 3, 8, 9, 0), local(2025, 3, 8, 18, 0)) == timedelta(0)


def test_bad_calendars_and_text_are_refused_with_a_reason():
    with pytest.raises(ValidationError, match="time zone"):
        WorkCalendar(time_zone="Mars/Olympus")
    with pytest.raises(ValidationError, match="non-overlapping"):
        WorkCalendar(periods=((600, 700), (650, 800)))
    with pytest.raises(ValidationError, match="both a holiday"):
        WorkCalendar(holidays=frozenset({date(2025, 1, 1)}), workdays=frozenset({date(2025, 1, 1)}))
    with pytest.raises(ValidationError, match="09:00-12:00"):
        work_calendar.parse_hours("9-12")
    with pytest.raises(ValidationError, match="YYYY-MM-DD"):
        work_calendar.parse_dates("1 Oct")
    with pytest.raises(ValidationError, match="1-7"):
        work_calendar.parse_weekdays("funday")
    nothing = WorkCalendar(weekdays=frozenset({1}), holidays=frozenset())
    assert nothing.add(local(2025, 3, 4, 9, 0), 60) == local(2025, 3, 10, 10, 0)
    only_holidays = WorkCalendar(weekdays=frozenset(), workdays=frozenset({date(2020, 1, 1)}))
    with pytest.raises(ValidationError, match="no working time"):
        only_holidays.add(local(2025, 3, 4, 9, 0), 60)


def test_text_forms_round_trip():
    assert work_calendar.parse_hours("09:00-12:00, 13:30-18:00") == ((540, 720), (810, 1080))
    assert work_calendar.format_hours(((540, 720), (810, 1080))) == "09:00-12:00,13:30-18:00"
    assert work_calendar.parse_weekdays("mon-fri") == work_calendar.parse_weekdays("1-5") == frozenset({1, 2, 3, 4, 5})
    assert work_calendar.parse_weekdays("1-5,7") == frozenset({1, 2, 3, 4, 5, 7})
    assert len(work_calendar.parse_dates("2025-10-01..2025-10-08")) == 8


# --- arithmetic as properties ---------------------------------------------------------------------

moments = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC))
minutes = st.integers(min_value=1, max_value=60 * 24 * 20)
calendars = st.sampled_from(
    [
        WorkCalendar(),
        NATIONAL_DAY,
        WorkCalendar(periods=((0, 24 * 60),), weekdays=frozenset(range(1, 8))),
        # A zone with clock changes, and a period that runs over one of them (02:00-03:00 in spring).
        WorkCalendar(
            time_zone="Europe/Berlin", periods=((60, 4 * 60), (8 * 60, 17 * 60)), weekdays=frozenset({1, 2, 3, 4, 5, 7})
        ),
    ]
)


def _in_working_time(cal: WorkCalendar, moment: datetime) -> bool:
    """Inside a period, or exactly at a period's close (a limit may end when the office closes)."""
    day = moment.astimezone(cal.zone).date()
    return any(b < moment <= e for d in (day - timedelta(days=1), day) for b, e in cal.intervals(d))


@settings(max_examples=150, deadline=None)
@given(cal=calendars, start=moments, a=minutes)
def test_a_due_time_always_lands_in_working_time_after_its_start(cal, start, a):
    due = cal.add(start, a)
    assert due > start
    assert _in_working_time(cal, due)
    # The working time between start and due is exactly the limit.
    assert cal.working_time_between(start, due) == timedelta(minutes=a)


@settings(max_examples=150, deadline=None)
@given(cal=calendars, start=moments, a=minutes, b=minutes)
def test_adding_a_then_b_is_adding_a_plus_b(cal, start, a, b):
    assert cal.add(cal.add(start, a), b) == cal.add(start, a + b)


@settings(max_examples=150, deadline=None)
@given(cal=calendars, start=moments, a=minutes, b=minutes, later=st.integers(min_value=0, max_value=10**7))
def test_more_time_or_a_later_start_never_gives_an_earlier_due(cal, start, a, b, later):
    low, high = sorted((a, b))
    assert cal.add(start, low) <= cal.add(start, high)
    assert cal.add(start, a) <= cal.add(start + timedelta(seconds=later), a)


@settings(max_examples=60, deadline=None)
@given(start=moments, a=minutes)
def test_a_calendar_without_breaks_is_the_wall_clock(start, a):
    always = WorkCalendar(periods=((0, 24 * 60),), weekdays=frozenset(range(1, 8)), time_zone="UTC")
    assert always.add(start, a) == start + timedelta(minutes=a)


# --- the store and the due times of dispatches --------------------------------------------------


@pytest.fixture
def world(engine):
    with engine.begin() as conn:
        return make_world(conn)


def test_the_calendar_is_off_until_saved_on_and_survives_a_round_trip(engine):
    with engine.begin() as conn:
        assert work_calendar.load(conn) is None
        work_calendar.save(conn, NATIONAL_DAY)
    with engine.connect() as conn:
        assert work_calendar.load(conn) == NATIONAL_DAY
    with engine.begin() as conn:
        work_calendar.save(conn, None, enabled=False)
    with engine.connect() as conn:
        assert work_calendar.load(conn) is None
        kept, enabled = work_calendar.stored(conn)
    assert kept == NATIONAL_DAY and not enabled


def test_due_times_count_working_hours_when_the_calendar_is_on(engine, world):
    # T0 is Monday 16:00 in Shanghai. Priority 3 limits: acknowledge 4 h, handle 24 h.
    dispatched_at = T0 + timedelta(minutes=20)  # 16:20
    with engine.begin() as conn:
        set_limits(conn, world.categories["garbage"], {3: (240, 1440), 1: (15, 60)})
        assert clock.compute_due_times(conn, world.categories["garbage"], 3, dispatched_at) == (
            dispatched_at + timedelta(hours=4),
            dispatched_at + timedelta(hours=24),
        )
        work_calendar.save(conn, WorkCalendar())
        ack, handle = clock.compute_due_times(conn, world.categories["garbage"], 3, dispatched_at)
        # 1 h 40 min on Monday, then 2 h 20 min on Tuesday from 09:00: 11:20.
        assert ack == local(2025, 3, 4, 11, 20)
        # 24 working hours: 1 h 40 on Monday, 7.5 h on Tuesday and Wednesday, 7 h 20 on Thursday: 17:50.
        assert handle == local(2025, 3, 6, 17, 50)
        # Urgent stays on the wall clock.
        assert clock.compute_due_times(conn, world.categories["garbage"], 1, dispatched_at) == (
            dispatched_at + timedelta(minutes=15),
            dispatched_at + timedelta(minutes=60),
        )
        work_calendar.save(conn, WorkCalendar(urgent_wall_clock=False))
        # Now urgent counts working time too: 17:50 + 60 min is 10 min on Monday and 50 on Tuesday.
        late = local(2025, 3, 3, 17, 50)
        assert clock.compute_due_times(conn, world.categories["garbage"], 1, late)[1] == local(2025, 3, 4, 9, 50)


def test_dispatch_and_extension_use_the_calendar(engine, world):
    with engine.begin() as conn:
        work_calendar.save(conn, WorkCalendar())
        incident_id = make_incident(conn, world.categories["garbage"], at=world.lattice.center(0), locator=world.locator)
        row = drive_to(conn, incident_id, lifecycle.ACKNOWLEDGED)
        dispatched_at = row["dispatched_at"]
        assert row["ack_due_at"] == WorkCalendar().add(dispatched_at, 240)
        due = row["handle_due_at"]
        assert due == WorkCalendar().add(dispatched_at, 1440)
        # 延期 by 8 working hours: one working day and half an hour later.
        extended = apply_action(
            conn, incident_id, "extend", actor="d", note="waiting for parts", extend_minutes=480, at=row["acknowledged_at"]
        )
        assert extended["handle_due_at"] == WorkCalendar().add(due, 480)
        assert extended["handle_due_at"] - due > timedelta(hours=8)
        assert get_incident(conn, incident_id)["extension_minutes"] == 480


def test_the_work_calendar_command_sets_shows_and_turns_off(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from app import cli
    from data import store

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("CITYBRAIN_DATABASE_URL", url)
    runner = CliRunner()
    result = runner.invoke(cli, ["work-calendar", "show"])
    assert result.exit_code == 0 and "off (never set)" in result.output
    result = runner.invoke(
        cli, ["work-calendar", "set", "--holidays", "2025-10-01..2025-10-08", "--workdays", "2025-09-28,2025-10-11"]
    )
    assert result.exit_code == 0, result.output
    assert "working calendar: on" in result.output and "09:00-12:00,13:30-18:00" in result.output
    engine = store.make_engine(url)
    with engine.connect() as conn:
        assert work_calendar.load(conn) == NATIONAL_DAY
    result = runner.invoke(cli, ["work-calendar", "set", "--hours", "8-12"])
    assert result.exit_code != 0 and "09:00-12:00" in result.output
    result = runner.invoke(cli, ["work-calendar", "set", "--urgent-working-hours", "--weekdays", "mon-sat"])
    assert result.exit_code == 0 and "urgent (priority 1): working hours" in result.output
    with engine.connect() as conn:
        kept = work_calendar.load(conn)
    assert kept.holidays == NATIONAL_DAY.holidays and kept.weekdays == frozenset(range(1, 7))  # the rest was kept
    result = runner.invoke(cli, ["work-calendar", "off"])
    assert result.exit_code == 0
    with engine.connect() as conn:
        assert work_calendar.load(conn) is None
    engine.dispose()


def test_a_demo_built_with_the_calendar_on_counts_working_hours_like_a_dispatch(engine):
    from sqlalchemy import select

    from data import schema
    from data.demo.city import build_demo

    with engine.begin() as conn:
        work_calendar.save(conn, NATIONAL_DAY)
    build_demo(engine, grids=120, days=3, per_day=80, seed=3, now=datetime(2025, 3, 5, 10, 0, tzinfo=UTC))
    inc, lim = schema.incidents, schema.category_limits
    with engine.connect() as conn:
        rows = conn.execute(
            select(inc.c.dispatched_at, inc.c.ack_due_at, inc.c.priority, inc.c.extension_minutes, lim.c.ack_minutes)
            .join_from(inc, lim, (lim.c.category_id == inc.c.category_id) & (lim.c.priority == inc.c.priority))
            .where(inc.c.dispatched_at.is_not(None))
        ).all()
    assert len(rows) > 50
    checked = 0
    for r in rows:
        start, due = times.from_db(r.dispatched_at), times.from_db(r.ack_due_at)
        expected = start + timedelta(minutes=r.ack_minutes) if r.priority == 1 else NATIONAL_DAY.add(start, r.ack_minutes)
        assert due == expected
        checked += r.priority != 1 and not NATIONAL_DAY.is_working_time(start + timedelta(minutes=r.ack_minutes))
    assert checked  # some limits crossed a night or weekend: the wall clock would have given another time
