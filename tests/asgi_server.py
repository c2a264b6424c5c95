"""The app served as in production (uvicorn, streams on its event loop) in a thread of the test, and a client for its event streams."""

from __future__ import annotations

import http.client
import socket
import threading
import time

import orjson
import uvicorn

from dashboard.live.asgi import CityBrainASGI


class AsgiServer:
    """uvicorn serving a Dash app (or its Flask server) through CityBrainASGI on a free 127.0.0.1 port, in a daemon thread."""

    def __init__(self, app, threads: int = 8, port: int = 0):
        self.asgi = CityBrainASGI(getattr(app, "server", app), threads=threads)  # a Dash app or its Flask server
        self.socket = socket.create_server(("127.0.0.1", port))
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.asgi, lifespan="off", log_config=None, timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def __enter__(self) -> AsgiServer:
        return self.start()

    def start(self) -> AsgiServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving; open connections (streams) are cut after a one-second grace, as by a dying process."""
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


class EventStream:
    """An open text/event-stream over HTTP; frames read with a deadline."""

    def __init__(self, base_url: str, path: str, headers: dict | None = None, timeout: float = 10.0):
        host, port = base_url.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
        self.connection.request("GET", path, headers={"Accept": "text/event-stream", **(headers or {})})
        self.response = self.connection.getresponse()
        self.status = self.response.status
        self.headers = {k.lower(): v for k, v in self.response.getheaders()}
        self.buffer = b""

    def body(self) -> bytes:
        """The whole body of an answer that is not a stream (a refusal)."""
        return self.response.read()

    def next_frame(self, timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        while b"\n\n" not in self.buffer:
            left = deadline - time.monotonic()
            assert left > 0, "no frame in time"
            self.connection.sock.settimeout(left)
            chunk = self.response.read1(65536)
            assert chunk, "the stream ended"
            self.buffer += chunk
        frame, self.buffer = self.buffer.split(b"\n\n", 1)
        fields: dict = {}
        for line in frame.decode().splitlines():
            key, _, value = line.partition(": ")
            fields[key] = value
        if "data" in fields:
            fields["data"] = orjson.loads(fields["data"])
        return fields

    def next_data(self, kind: str, timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            frame = self.next_frame(max(deadline - time.monotonic(), 0.01))
            if "data" in frame and frame["data"]["type"] == kind:
                return frame

    def ended(self, timeout: float = 5.0) -> bool:
        """Whether the server closes the stream within `timeout` (frames before the end are skipped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.connection.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                if not self.response.read1(65536):
                    return True
            except TimeoutError:
                return False
        return False

    def close(self) -> None:
        self.connection.close()


def read_whole_stream(app, path: str, headers: dict) -> str:
    """GET `path` from `app` served as in production and read its event stream until the server ends it."""
    with AsgiServer(app) as served:
        stream = EventStream(served.url, path, headers=headers, timeout=30)
        try:
            assert stream.headers["content-type"].startswith("text/event-stream"), stream.headers
            return stream.response.read().decode()
        finally:
            stream.close()
