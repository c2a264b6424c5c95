"""The roll-up (data/metrics/rollups.py) gives the leaders' review the direct computation gives, on SQLite and PostgreSQL,
after a rebuild, with changes not yet applied (read in memory), and after an incremental refresh."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from data import schema, store
from data.incidents import lifecycle
from data.incidents.transitions import apply_action
from data.jobs.catalogue import rollups_job, standard_jobs
from data.jobs.runner import JobRunner
from data.metrics import rollup_cells, rollups, trends, trends_rollup
from data.metrics.review_periods import bucket_starts, period_window
from data.metrics.review_rules import LeagueThresholds
from data.metrics.scope import normalise_scope
from tests.data.metrics.test_trends import NOW, ROADS, STEPS_MIN, TZ, city  # noqa: F401  (city is a fixture)
from tests.factories import make_incident

QUANTILES = {"median_ack_s", "p90_ack_s", "median_handle_s", "p90_handle_s"}
CHOICES = [
    {"days": 7, "granularity": "day"},
    {"days": 30, "granularity": "week"},
    {"days": 90, "granularity": "month"},
    {"days": None, "first": date(2025, 3, 5), "last": date(2025, 3, 12), "granularity": "day"},
]


def _same(got, want, path="review"):
    """Equal, except that medians and p90s may differ by one histogram bin (4.4%)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), f"{path}: keys {list(got)} != {list(want)}"
        for k in want:
            if k in QUANTILES and want[k] is not None:
                assert got[k] == pytest.approx(want[k], rel=0.045, abs=0.5), f"{path}.{k}"
            else:
                _same(got[k], want[k], f"{path}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{path}: {len(got)} items != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _same(g, w, f"{path}[{i}]")
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"


def _scopes(world):
    return [None, ("district", world.lattice.district_ids[0]), ("street", world.lattice.street_ids[1])]


def _check_all(engine, world, now=NOW):
    for scope in _scopes(world):
        for choice in CHOICES:
            with store.reading(engine) as conn:
                direct = trends.review(conn, scope, now, TZ, use_rollups=False, **choice)
                # The roll-up path is really taken (it answers None when it cannot).
                normal = normalise_scope(scope)
                period = period_window(now, TZ, choice["days"], choice.get("first"), choice.get("last"))
                starts = bucket_starts(period, choice["granularity"])
                rolled = trends_rollup.review(conn, normal, now, period, starts, choice["granularity"], LeagueThresholds())
                via_default = trends.review(conn, scope, now, TZ, **choice)
            assert rolled is not None
            _same(rolled, direct, f"review[{scope}, {choice}]")
            _same(via_default, direct)
            assert direct["totals"]["received"] > 0 or choice["days"] == 7


def _cube(engine) -> dict:
    with store.reading(engine) as conn:
        return {k: rollup_cells.cube_row(k, c) for k, c in rollup_cells.read_cells(conn, []).items()}


def test_rollup_review_equals_the_direct_computation(engine, city):  # noqa: F811
    with engine.begin() as conn:
        done = rollups.refresh(conn, TZ)
    assert done["rebuilt"] and done["incidents"] == 101
    _check_all(engine, city)


def _more_history(engine, world, seed: int, n: int = 40) -> None:
    """New incidents and actions on old ones, through data/incidents/intake.py and transitions.py (the change feed)."""
    rng = random.Random(seed)
    cats = list(world.categories.values())
    with engine.begin() as conn:
        old = [
            r.id
            for r in conn.execute(select(schema.incidents.c.id, schema.incidents.c.state))
            if r.state in lifecycle.OPEN_STATES
        ]
        for incident_id in rng.sample(old, min(10, len(old))):
            state = conn.execute(select(schema.incidents.c.state).where(schema.incidents.c.id == incident_id)).scalar_one()
            action = {
                "reported": "register",
                "registered": "dispatch",
                "dispatched": "acknowledge",
                "acknowledged": "resolve",
            }.get(state)
            if action:
                apply_action(conn, incident_id, action, actor="test", at=NOW - timedelta(minutes=1))
        for _ in range(n):
            reported = NOW - timedelta(minutes=rng.randint(30, 40 * 24 * 60))
            incident_id = make_incident(
                conn,
                rng.choice(cats),
                at=world.lattice.center(rng.randrange(len(world.lattice.grid_ids))),
                reported_at=reported,
                locator=world.locator,
            )
            t = reported
            for action in rng.choice(ROADS):
                t += timedelta(minutes=rng.choice(STEPS_MIN))
                if t > NOW or action in ("merge",):
                    break
                kwargs = {"note": "test"} if action in lifecycle.NEEDS_NOTE else {}
                if action == "reassign":
                    kwargs["department_id"] = world.departments["zj"]
                if action == "rate":
                    kwargs["satisfaction"] = rng.choice([1, 3, 5])
                apply_action(conn, incident_id, action, actor="test", at=t, **kwargs)


def test_changes_count_before_and_after_the_refresh(engine, city):  # noqa: F811
    with engine.begin() as conn:
        rollups.refresh(conn, TZ)
    _more_history(engine, city, seed=7)
    with store.reading(engine) as conn:
        state = rollups.read_state(conn)
        assert rollups.pending(conn, state), "the new incidents are pending"
    _check_all(engine, city)  # read with the changes applied in memory
    with engine.begin() as conn:
        done = rollups.refresh(conn, TZ)
    assert not done["rebuilt"] and done["incidents"] >= 40
    _check_all(engine, city)
    kept_current = _cube(engine)
    with engine.begin() as conn:
        rollups.rebuild(conn, TZ)
    assert _cube(engine) == kept_current, "the cube kept by refreshes equals one rebuilt from scratch"
    with store.reading(engine) as conn:
        assert rollups.pending(conn, rollups.read_state(conn)) == {}


def test_rollup_is_not_used_where_it_cannot_answer(engine, city):  # noqa: F811
    with store.reading(engine) as conn:
        period = period_window(NOW, TZ, 30)
        starts = bucket_starts(period, "day")
        args = (period, starts, "day", LeagueThresholds())
        assert trends_rollup.review(conn, None, NOW, *args) is None, "never built"
    with engine.begin() as conn:
        rollups.refresh(conn, TZ)
    with store.reading(engine) as conn:
        community = normalise_scope(("community", city.lattice.community_ids[0]))
        assert trends_rollup.review(conn, community, NOW, *args) is None, "communities and grids read the raw rows"
        earlier = NOW - timedelta(days=3)
        early = period_window(earlier, TZ, 30)
        assert trends_rollup.review(conn, None, earlier, early, bucket_starts(early, "day"), "day", LeagueThresholds()) is None
        assert trends_rollup.review(conn, None, NOW, *args) is not None


def test_a_rebuilt_store_rebuilds_the_rollup(engine, city):  # noqa: F811
    from data.demo.city import clear_store

    with engine.begin() as conn:
        rollups.refresh(conn, TZ)
        conn.execute(schema.trend_rollup_state.delete())
    with engine.begin() as conn:
        assert rollups.refresh(conn, TZ)["rebuilt"]
    _check_all(engine, city)
    # A demo build clears the incidents and their events, and with them the roll-up's state and snapshot.
    with engine.begin() as conn:
        clear_store(conn)
        assert rollups.read_state(conn) is None
        assert conn.execute(select(schema.trend_rollup_seen.c.incident_id).limit(1)).first() is None
        done = rollups.refresh(conn, TZ)
        assert done == {"rebuilt": True, "incidents": 0}
        assert rollup_cells.read_cells(conn, []) == {}


def test_quantile_estimate_is_within_a_bin():
    rng = random.Random(3)
    values = [rng.lognormvariate(7, 1.3) for _ in range(999)] + [0.2, 5.0]
    hist: dict[int, int] = {}
    for b in rollup_cells.duration_bin(__import__("numpy").array(values)):
        hist[int(b)] = hist.get(int(b), 0) + 1
    ordered = sorted(values)
    for q in (0.5, 0.9):
        k = (len(ordered) - 1) * q
        exact = ordered[int(k)] + (ordered[int(k) + 1] - ordered[int(k)]) * (k - int(k))
        assert rollup_cells.quantile(hist, q) == pytest.approx(exact, rel=0.045)
    assert rollup_cells.quantile({}, 0.5) is None


def test_few_and_many_rows_are_summed_alike(engine, city, monkeypatch):  # noqa: F811
    """Readers sum a few changed incidents in plain Python, the rebuild sums many with pandas: same cells."""
    with store.reading(engine) as conn:
        rows = rollups._arrays(conn.execute(select(*rollups._incident_columns())).all())
    few = rollups.contributions(rows, TZ)
    monkeypatch.setattr(rollups, "SMALL", 0)
    many = rollups.contributions(rows, TZ)
    assert {k: rollup_cells.cube_row(k, c) for k, c in few.items()} == {k: rollup_cells.cube_row(k, c) for k, c in many.items()}
    unmerged = int((rows["state"] != lifecycle.MERGED).sum())
    assert 0 < unmerged < 101
    assert sum(c.counts[0] for k, c in few.items() if k[1:] == (0, 0)) == unmerged  # received


def test_command_and_worker_keep_the_rollup_current(engine, city, monkeypatch):  # noqa: F811
    """`python app.py rollup refresh` builds then refreshes; the background worker applies new changes."""
    from click.testing import CliRunner

    from app import cli

    if engine.dialect.name == "sqlite":  # the command opens its own engine on the URL (no per-test PG schema)
        monkeypatch.setenv("CITYBRAIN_DATABASE_URL", engine.url.render_as_string(hide_password=False))
        monkeypatch.setenv("CITYBRAIN_TIMEZONE", TZ)
        first = CliRunner().invoke(cli, ["rollup", "refresh"])
        assert first.exit_code == 0 and "built from 101 incident(s)" in first.output, first.output
        again = CliRunner().invoke(cli, ["rollup", "refresh"])
        assert "refreshed with 0 incident(s)" in again.output
    _more_history(engine, city, seed=11, n=5)
    runner = JobRunner(engine, rollups_job(engine, 0.2, TZ))
    try:
        assert runner.tick() and runner.last_error is None
    finally:
        runner.lock.close()
    with store.reading(engine) as conn:
        assert rollups.pending(conn, rollups.read_state(conn)) == {}
    _check_all(engine, city)
    off = standard_jobs(engine, timezone=TZ, warnings_every=0, rollups_every=0, escalate_every=0)
    assert "rollups" not in [job.name for job in off]


def test_a_refresh_committed_during_a_review_is_not_counted_twice(engine, city, monkeypatch):  # noqa: F811
    """A refresh that commits while a review reads (PostgreSQL's READ COMMITTED sees it mid-way) changes nothing."""
    with engine.begin() as conn:
        rollups.refresh(conn, TZ)
    _more_history(engine, city, seed=5)
    real_pending, calls = rollups.pending, []

    def pending_then_refresh(conn, state):
        changes = real_pending(conn, state)
        if not calls:  # the first attempt: another worker applies the same changes and commits now
            calls.append(rollups.refresh_store(engine, TZ))
        return changes

    monkeypatch.setattr(rollups, "pending", pending_then_refresh)
    with store.reading(engine) as conn:
        got = trends.review(conn, None, NOW, TZ, days=30)
    monkeypatch.setattr(rollups, "pending", real_pending)
    assert calls and calls[0]["incidents"] >= 40
    with store.reading(engine) as conn:
        _same(got, trends.review(conn, None, NOW, TZ, days=30, use_rollups=False))
