"""A small TCP proxy a test starts in front of a real server, to cut or stall it without touching the server.

with TcpProxy(5432) as proxy:          # listens on 127.0.0.1:<proxy.port>, forwards to 127.0.0.1:5432
    ... connect through proxy.port ...
    proxy.cut()      # every open connection is closed; new ones are refused (the server "went down")
    proxy.stall()    # connections stay open and are accepted, but nothing is forwarded either way
    proxy.restore()  # back to forwarding (stalled connections are closed: their bytes are lost)
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading

PASS, CUT, STALL = "pass", "cut", "stall"


class TcpProxy:
    """Forwards 127.0.0.1:port -> target; mode PASS, CUT or STALL, switched from the test."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.mode = PASS
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket | None]] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="tcp-proxy", daemon=True)

    # --- the test's controls -------------------------------------------------------------------

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def cut(self) -> None:
        """Drop every connection and refuse new ones (as a server that went away)."""
        self._switch(CUT)

    def stall(self) -> None:
        """Keep connections open but forward nothing (as a server that hangs)."""
        self._switch(STALL)

    def restore(self) -> None:
        """Forward again; connections opened or held during a stall are closed (their requests are lost)."""
        self._switch(PASS)

    def close(self) -> None:
        self._stopped = True
        self._wake()
        self._thread.join(timeout=5)
        self._drop_all()
        self._listener.close()

    def _switch(self, mode: str) -> None:
        with self._lock:
            previous, self.mode = self.mode, mode
        if mode == CUT or (previous == STALL and mode == PASS):
            self._drop_all()
        self._wake()

    # --- the loop --------------------------------------------------------------------------------

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _drop_all(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                self._discard(sock)

    def _discard(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)
        with contextlib.suppress(OSError):
            sock.close()

    def _run(self) -> None:
        self._listener.setblocking(False)
        self._selector.register(self._listener, selectors.EVENT_READ, ("accept", None))
        self._selector.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        while not self._stopped:
            for key, _ in self._selector.select(timeout=0.5):
                kind, peer = key.data
                if kind == "wake":
                    self._wake_r.recv(4096)
                elif kind == "accept":
                    self._accept()
                elif self.mode == PASS:
                    self._forward(key.fileobj, peer)
            if self.mode == STALL:
                # Nothing is forwarded; readable sockets are left unread (the kernel buffers fill, as on a hung server).
                with self._lock:
                    for client, upstream in self._pairs:
                        for sock in (client, upstream):
                            if sock is not None and sock.fileno() != -1 and self._selector.get_map().get(sock.fileno()):
                                self._selector.unregister(sock)
            elif self.mode == PASS:
                self._reregister()
        self._selector.close()

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        if self.mode == CUT:
            client.close()
            return
        upstream = None
        if self.mode == PASS:
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                return
            upstream.setblocking(False)
        client.setblocking(False)
        with self._lock:
            self._pairs.append((client, upstream))
        if upstream is not None:
            self._selector.register(client, selectors.EVENT_READ, ("data", upstream))
            self._selector.register(upstream, selectors.EVENT_READ, ("data", client))

    def _reregister(self) -> None:
        with self._lock:
            pairs = list(self._pairs)
        registered = self._selector.get_map()
        for client, upstream in pairs:
            if upstream is None or client.fileno() == -1 or upstream.fileno() == -1:
                continue
            if client.fileno() not in registered:
                self._selector.register(client, selectors.EVENT_READ, ("data", upstream))
            if upstream.fileno() not in registered:
                self._selector.register(upstream, selectors.EVENT_READ, ("data", client))

    def _forward(self, source: socket.socket, destination: socket.socket) -> None:
        try:
            chunk = source.recv(65536)
            if chunk:
                destination.setblocking(True)
                destination.sendall(chunk)
                destination.setblocking(False)
                return
        except OSError:
            pass
        self._close_pair(source)

    def _close_pair(self, sock: socket.socket) -> None:
        with self._lock:
            pair = next((p for p in self._pairs if sock in p), None)
            if pair is not None:
                self._pairs.remove(pair)
        for s in pair or (sock,):
            self._discard(s)
