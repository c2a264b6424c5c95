"""The SQLite median aggregate behind the median acknowledge and handling times: the same answer as statistics.median."""

from __future__ import annotations

import random
import sqlite3
import statistics

import pytest

from data.metrics.sql_parts import SQLITE_MEDIAN, MedianAggregate


@pytest.mark.parametrize("count", [1, 2, 3, 4, 101, 2000])
def test_sqlite_median_equals_statistics_median_with_nulls_left_out(count):
    rng = random.Random(count)
    values = [round(rng.uniform(0, 200_000), 3) if rng.random() > 0.2 else None for _ in range(count)]
    values.append(round(rng.uniform(0, 10), 3))  # at least one real value
    conn = sqlite3.connect(":memory:")
    conn.create_aggregate(SQLITE_MEDIAN, 1, MedianAggregate)
    conn.execute("CREATE TABLE t (x REAL)")
    conn.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])
    (got,) = conn.execute(f"SELECT {SQLITE_MEDIAN}(x) FROM t").fetchone()
    # Exactly equal (not approximately): an even count averages the two middle values the same way.
    assert got == statistics.median([v for v in values if v is not None])
    assert isinstance(got, float)


def test_sqlite_median_of_nothing_is_null():
    conn = sqlite3.connect(":memory:")
    conn.create_aggregate(SQLITE_MEDIAN, 1, MedianAggregate)
    conn.execute("CREATE TABLE t (x REAL)")
    conn.execute("INSERT INTO t VALUES (NULL)")
    assert conn.execute(f"SELECT {SQLITE_MEDIAN}(x) FROM t").fetchone() == (None,)
    assert conn.execute(f"SELECT {SQLITE_MEDIAN}(x) FROM t WHERE x > 0").fetchone() == (None,)
