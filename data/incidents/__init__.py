"""Incidents: the lifecycle rules, every write (intake, transitions, the change feed), clocks and calendar, dispatch, escalation, notifications, file intake."""
