"""Metrics (reads only): the overview's KPIs, board and charts, their in-memory working set, the leaders' review and its roll-up.

What lives where (import from the module; this package exports nothing, so importing one module never
loads the others):

- scope.py            the scope (city or unit), time zone and today's window every reading takes; SATISFIED_MIN
- sql_parts.py        pieces of the SQL: named parameters, prebuilt statements, scope clause, durations, medians
- kpis.py             the overview's headline KPIs against the same time yesterday (the SQL reference)
- board.py            the overview's department board (吹哨报到) over the last 7 days
- overview_charts.py  the overview's 24-hour trend and breakdown by sector and category
- working_set.py      the KPIs and board from an in-memory working set kept current from the change feed
- trends.py           the leaders' review (/trends) from the raw incidents: review()
- review_periods.py   the review's period and buckets (day, week, month)
- review_rows.py      the incidents a review reads, as numpy columns; names; a hard case's row
- review_rules.py     rules both readings of the review share: units compared, category tables, league cards and order
- trends_rollup.py    the review answered from the roll-up
- rollup_cells.py     a roll-up cell: counts, duration histograms and quantiles, its stored row
- rollups.py          the roll-up's maintenance: contributions, refresh from the change feed (run by data/jobs/)
"""
