"""The ASGI application: live streams on the event loop, every other request to the Flask app in a thread pool.

Why: a server-sent event stream is open for as long as a screen is (all day on a wall). Under a
threaded WSGI server each one held a worker thread, so twenty screens starved the API and the
callbacks. Here a stream is a coroutine waiting on the process's Hub: it costs a connection and a
few kilobytes, and thousands fit beside the thread pool (a2wsgi) that runs Flask and Dash as before.

A stream request first runs through Flask like any request (sign-in gate, CSRF, jurisdiction,
API key, parsing): the view admits it by handing over a spec (routes.hand_over); only then does
the stream start here. Anything else Flask answers (401, 403, 400, 503) goes back as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from concurrent.futures import ThreadPoolExecutor

from a2wsgi import WSGIMiddleware
from a2wsgi.wsgi import build_environ

from dashboard.live.hub import hub_for
from dashboard.live.routes import ASGI_KEY, STREAM_KEY
from dashboard.live.streams import FeedSpec, LiveSpec, feed_stream, live_stream, run_until_disconnected
from dashboard.observability.metrics import stream_closed, stream_opened

log = logging.getLogger(__name__)

STREAM_PATHS = frozenset({"/live/events", "/api/v1/feed"})


class CityBrainASGI:
    """Streams here, the rest to `flask_app` (its Dash server) through a2wsgi's thread pool of `threads`."""

    def __init__(self, flask_app, threads: int = 16):
        self.flask_app = flask_app
        self.threads = threads
        self.wsgi = WSGIMiddleware(flask_app, workers=threads)
        # Admissions are short Flask requests; their own threads keep a burst of reconnecting screens
        # from queueing behind slow callbacks (and the reverse).
        self._admissions = ThreadPoolExecutor(4, thread_name_prefix="citybrain-admit")
        self.open_streams = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] in STREAM_PATHS:
            await self._stream(scope, receive, send)
            return
        await self.wsgi(scope, receive, send)

    def _admit(self, environ: dict) -> tuple[str, list, bytes]:
        """Run the request through Flask; (status, headers, body) of its answer."""
        answer: dict = {}

        def start_response(status, headers, exc_info=None):
            answer["status"], answer["headers"] = status, headers

        chunks = self.flask_app(environ, start_response)
        try:
            body = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        return answer["status"], answer["headers"], body

    async def _stream(self, scope, receive, send) -> None:
        environ = build_environ(scope, io.BytesIO(b""))
        environ[ASGI_KEY] = True
        loop = asyncio.get_running_loop()
        status, headers, body = await loop.run_in_executor(self._admissions, self._admit, environ)
        spec = environ.get(STREAM_KEY)
        code = int(status.split(" ", 1)[0])
        streaming = spec is not None and code == 200
        raw_headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in headers
            if not (streaming and k.lower() == "content-length")  # the admission's empty body is not the stream's
        ]
        await send({"type": "http.response.start", "status": code, "headers": raw_headers})
        if not streaming:
            await send({"type": "http.response.body", "body": body})
            return
        engine = self.flask_app.extensions["citybrain"].engine
        hub = hub_for(engine, loop)

        async def send_bytes(chunk: bytes) -> None:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

        if isinstance(spec, LiveSpec):
            stream = live_stream(spec, hub, send_bytes)
        elif isinstance(spec, FeedSpec):
            stream = feed_stream(spec, hub, send_bytes)
        else:  # a view handed over something this layer does not know: a bug, said once
            raise TypeError(f"unknown stream spec {type(spec).__name__}")
        self.open_streams += 1
        stream_opened()
        try:
            await run_until_disconnected(stream, receive)
        finally:
            self.open_streams -= 1
            stream_closed()
        with contextlib.suppress(OSError, RuntimeError):  # the client may be gone: nothing to finish then
            await send({"type": "http.response.body", "body": b"", "more_body": False})
