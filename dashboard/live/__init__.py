"""Live updates: the change feed pushed to screens and API clients as server-sent events, without a thread per stream.

wire.py     the message format (retry, changes, heartbeat, reset) and the build id
routes.py   the Flask side: /live/head, and /live/events admitted (who, from where) before it streams
hub.py      one watcher per process and store: the feed head from PostgreSQL NOTIFY (SQLite: polling),
            each change read once and shared by every stream
streams.py  the stream loops (screens and the API's feed), as coroutines
asgi.py     the ASGI application: streams on the event loop, everything else to Flask in a thread pool
"""
