"""One early-warning pass (预测预警): every detector over a read snapshot, then its findings recorded in one write.

The detectors, one module each: surges.py (a unit and category far above its seasonal baseline),
hotspots.py (a new space-time cluster), chronic.py (the same thing at the same spot on many days)
and deadlines.py (an open incident likely to miss its time limit). They share context.py (grids,
reports, the pass's Context) and stats.py. Sensitivity per category (data/warnings/sensitivity.py)
divides the thresholds; reasons.py words each finding; data/warnings/alerts.record_findings
stores them, deduplicated per condition. ``run_detection`` is the one entry point the background
job (data/jobs/catalogue.py) and ``python app.py detect-warnings`` call.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Engine, and_, func, select, text
from sqlalchemy.engine import Connection

from data import schema, store
from data.errors import ValidationError
from data.times import to_utc, utc_now
from data.warnings import context, deadlines
from data.warnings.alerts import record_findings
from data.warnings.chronic import CHRONIC_DAYS, detect_chronic
from data.warnings.context import BASELINE_WEEKS, DAY, HOUR, INC, WEEK, C, Context, load_grids, load_reports
from data.warnings.deadlines import detect_deadlines
from data.warnings.hotspots import HOTSPOT_COOLDOWN, detect_hotspots
from data.warnings.reasons import fill_reasons
from data.warnings.sensitivity import sensitivity_map
from data.warnings.surges import SURGE_WINDOWS_H, detect_surges

log = logging.getLogger(__name__)

ALL_KINDS = ("surge", "hotspot", "chronic", "deadline")
PASS_LOCK = 727003  # PostgreSQL advisory lock: one pass writes at a time (the job and `detect-warnings`)


def clear_caches() -> None:
    """Forget the grids, reports and pace kept between passes (a fresh process; tests and benchmarks)."""
    context.clear_caches()
    deadlines.clear_caches()


def _categories(conn: Connection) -> tuple[np.ndarray, np.ndarray]:
    ids = np.array(conn.execute(select(C.c.id).where(C.c.active.is_(True)).order_by(C.c.id)).scalars().all(), dtype=np.int64)
    settings = sensitivity_map(conn)
    sens = np.array([settings.get(int(i), (1.0, True))[0] if settings.get(int(i), (1.0, True))[1] else 0.0 for i in ids])
    return ids, sens


def _known_alerts(conn: Connection, now: datetime) -> tuple[set[str], list[dict]]:
    """(condition keys of live alerts, recent hotspot alerts with their grids)."""
    al = schema.alerts
    live = set(conn.execute(select(al.c.condition_key).where(al.c.status.in_(("open", "acknowledged")))).scalars())
    rows = conn.execute(
        select(al.c.condition_key, al.c.details).where(
            al.c.kind == "hotspot",
            and_(al.c.last_seen_at >= now - timedelta(seconds=HOTSPOT_COOLDOWN)),
        )
    )
    hotspots = []
    for row in rows:
        try:
            grids = json.loads(row.details or "{}").get("grids", [])
        except ValueError:
            grids = []
        hotspots.append({"condition_key": row.condition_key, "grids": grids})
    return live, hotspots


def detect(conn: Connection, now: datetime, tz: str = "Asia/Shanghai", kinds=ALL_KINDS) -> tuple[list[dict], dict[str, float]]:
    """(findings, timings): every detector over the store as it is at `now` (reports after `now` are ignored)."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        timings[name] = round(time.perf_counter() - clock, 4)
        clock = time.perf_counter()

    now = to_utc(now, "now")
    cat_ids, sens = _categories(conn)
    live, known_hotspots = _known_alerts(conn, now)
    grids = load_grids(conn)
    first = conn.execute(select(func.min(INC.c.reported_at))).scalar()
    history_start = to_utc(first.replace(tzinfo=first.tzinfo or UTC), "first").timestamp() if first else now.timestamp()
    lap("load_grids")
    span = max(BASELINE_WEEKS * WEEK + max(SURGE_WINDOWS_H) * HOUR, CHRONIC_DAYS * DAY)
    needs_reports = any(k in kinds for k in ("surge", "hotspot", "chronic"))
    since = now - timedelta(seconds=span) if needs_reports else now
    reports = load_reports(conn, grids, cat_ids, since, now)
    lap("load_reports")
    ctx = Context(now.timestamp(), ZoneInfo(tz), cat_ids, sens, grids, reports, history_start, live)
    findings: list[dict] = []
    if "surge" in kinds:
        findings += detect_surges(ctx)
        lap("surge")
    if "hotspot" in kinds:
        findings += detect_hotspots(ctx, known_hotspots, [f for f in findings if f["kind"] == "surge"])
        lap("hotspot")
    if "chronic" in kinds:
        findings += detect_chronic(ctx)
        lap("chronic")
    if "deadline" in kinds:
        findings += detect_deadlines(conn, ctx)
        lap("deadline")
    fill_reasons(conn, findings)
    lap("reasons")
    timings["reports_read"] = len(reports.t)
    return findings, timings


def run_detection(engine: Engine, now: datetime | None = None, kinds=None, tz: str = "Asia/Shanghai") -> dict:
    """One pass: detect on a read snapshot, then record in one write transaction. Returns counts and timings."""
    started = time.perf_counter()
    now = to_utc(now, "now") if now is not None else utc_now()
    kinds = tuple(ALL_KINDS if kinds is None else kinds)
    unknown = set(kinds) - set(ALL_KINDS)
    if unknown:
        raise ValidationError(f"unknown kind(s) {', '.join(sorted(unknown))}; use {', '.join(ALL_KINDS)}")
    with store.reading(engine) as conn:
        findings, timings = detect(conn, now, tz, kinds)
    write_started = time.perf_counter()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k, hashtext(current_schema()))"), {"k": PASS_LOCK})
        counts = record_findings(conn, findings, kinds, now)
        store.set_meta(conn, "warnings.last_pass_at", now.isoformat())
    timings["write"] = round(time.perf_counter() - write_started, 4)
    timings["total"] = round(time.perf_counter() - started, 4)
    found: dict[str, int] = {k: 0 for k in ALL_KINDS}
    for f in findings:
        found[f["kind"]] += 1
    return {
        "now": now.isoformat(),
        "kinds": {k: {"found": found[k], **counts[k]} for k in kinds},
        "timings": timings,
    }


def summary_line(summary: dict) -> str:
    """One line for logs and the command line."""
    parts = [
        f"{k}: {v['found']} found, {v['raised']} new, {v['updated']} updated, {v['cleared']} cleared"
        for k, v in summary["kinds"].items()
    ]
    return "; ".join(parts) + f" ({summary['timings']['total']:.2f} s)"


__all__ = ["ALL_KINDS", "clear_caches", "detect", "run_detection", "summary_line"]
