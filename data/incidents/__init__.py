"""Incidents: the lifecycle rules and every write to an incident, its clocks, dispatch, escalation, notifications, file intake.

What lives where (import the module you need; this package exports nothing itself):

- lifecycle     states, actions and which action leads where (pure rules, no database)
- intake        report_incidents / report_checked_incidents: checking, locating, known ids
- bulk_insert   the inserts behind intake: SQLite executemany, a PostgreSQL statement, COPY
- transitions   apply_action: each action's effect, with its audit event and notifications
- feed          the change feed (lock_change_feed, events_after) and get_incident / history
- clock, calendar   due times and overdue/near-due (Python and SQL); the working calendar
- queue         the dispatcher's queue, its counts and filters, the dispatch target
- suggestions   whom to send an incident to, and why
- duplicates    likely duplicates and merging them
- dispatch      one-click and batch dispatch, undo, any desk action, the incident panel's read
- escalation    automatic escalation of overdue incidents (the sweep; data/jobs/ runs it)
- notify        who a transition tells: inboxes of departments and grid workers, the centre's inbox
- webhooks      signed webhooks: the outbox, signing, retries and back-off, the delivery log
- webhook_delivery  posting the outbox: rows claimed one at a time, a lane per department
- file_import   importing a CSV/GeoJSON file of incidents (file_reading: reading it and its
                options; file_rows: checking its rows)
- api_store     what the intake APIs read and write beside incidents (lists, attributes, idempotency)
"""
