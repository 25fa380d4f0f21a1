"""A local HTTP mirror on 127.0.0.1 for the real fetch code: serves a folder laid out like a
download site, supports ranges, and misbehaves on request (503s, resets, short bodies)."""

from __future__ import annotations

import socket
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Mirror:
    def __init__(self, root: Path):
        self.root = root
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.fail_first: dict[str, int] = {}  # path -> answer 503 this many times
        self.reset_after: dict[str, int] = {}  # path -> close the socket after N body bytes, once
        self.short_body: dict[
            str, int
        ] = {}  # path -> send N bytes under a full Content-Length, once
        self.no_range: set[str] = set()  # paths that ignore Range
        self._served: defaultdict[str, int] = defaultdict(int)
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                mirror.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self) -> Mirror:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def requests_for(self, path: str) -> list[str | None]:
        return [r for p, r in self.requests if p == path]

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        range_header = h.headers.get("Range")
        self.requests.append((path, range_header))
        self._served[path] += 1
        if self.fail_first.get(path, 0) >= self._served[path]:
            h.send_error(503, "Service Unavailable")
            return
        file = self.root / path.lstrip("/")
        if not file.is_file():
            h.send_error(404, "Not Found")
            return
        data = file.read_bytes()
        start = 0
        if range_header and path not in self.no_range and range_header.startswith("bytes="):
            start = int(range_header[6:].split("-", 1)[0])
            if start >= len(data):
                h.send_error(416, "Range Not Satisfiable")
                return
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            h.send_response(200)
            h.send_header("Accept-Ranges", "bytes")
        body = data[start:]
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if path in self.reset_after:
            cut = self.reset_after.pop(path)
            h.wfile.write(body[:cut])
            h.wfile.flush()
            # An abrupt close (RST) in the middle of the body.
            linger_now = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # l_onoff=1, l_linger=0
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_now)
            h.connection.close()
            h.close_connection = True
            return
        if path in self.short_body:
            h.wfile.write(body[: self.short_body.pop(path)])
            h.wfile.flush()
            h.close_connection = True
            return
        h.wfile.write(body)


def lay_out(root: Path, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
