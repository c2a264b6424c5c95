"""Administration: audited changes to departments, categories and their time limits, the responsibility list, duty lists, API keys and users.

One module per administered entity (departments, categories, responsibility, duties, keys, users);
audit.py holds the admin log (`record`, `events`) and checks.py the checks they share. Every change
takes a connection inside the caller's transaction, checks all of its input before it writes
anything, and records one row in `admin_events` (who, what, the record before and after) in the
same transaction: a refused change stores nothing, an accepted one is never unaudited. Unknown
codes raise NotFound, unusable values ValidationError, duplicates Conflict.
"""
