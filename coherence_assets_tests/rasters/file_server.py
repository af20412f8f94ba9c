"""A small threaded HTTP file server on 127.0.0.1 for download tests.

It serves in-memory files with ``Range`` support and can misbehave on demand: cut a response
after some bytes, answer with an error status a few times, or ignore ``Range`` requests.
"""

from __future__ import annotations

import re
import socket
import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_RANGE = re.compile(r"^bytes=(\d+)-$")


@dataclass
class RecordedRequest:
    method: str
    path: str
    range_header: str | None


@dataclass
class ServerBehaviour:
    files: dict[str, bytes] = field(default_factory=dict)
    cuts: dict[str, deque[int]] = field(default_factory=lambda: defaultdict(deque))
    errors: dict[str, deque[int]] = field(default_factory=lambda: defaultdict(deque))
    ignore_range: bool = False
    requests: list[RecordedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class FileServer:
    """Serve ``files`` (path -> bytes) until :meth:`stop`; use as a context manager."""

    def __init__(self) -> None:
        self.behaviour = ServerBehaviour()
        handler = type("Handler", (_Handler,), {"behaviour": self.behaviour})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def add_file(self, path: str, content: bytes) -> str:
        self.behaviour.files[path] = content
        return self.url(path)

    def cut_next_response(self, path: str, after_bytes: int) -> None:
        """The next GET of ``path`` announces the full length but closes after ``after_bytes``."""
        self.behaviour.cuts[path].append(after_bytes)

    def fail_next_requests(self, path: str, status: int, times: int) -> None:
        """The next ``times`` requests of ``path`` answer ``status`` with ``Retry-After: 0``."""
        self.behaviour.errors[path].extend([status] * times)

    def ignore_range_requests(self) -> None:
        self.behaviour.ignore_range = True

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.behaviour.requests


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    behaviour: ServerBehaviour

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def _serve(self, send_body: bool) -> None:
        behaviour = self.behaviour
        range_header = self.headers.get("Range")
        with behaviour.lock:
            behaviour.requests.append(RecordedRequest(self.command, self.path, range_header))
            error = behaviour.errors[self.path].popleft() if behaviour.errors[self.path] else None
            cut = behaviour.cuts[self.path].popleft() if send_body and behaviour.cuts[self.path] else None
        if error is not None:
            self._send_status(error, {"Retry-After": "0"})
            return
        content = behaviour.files.get(self.path)
        if content is None:
            self._send_status(404, {})
            return
        start = self._range_start(range_header)
        if start is not None and start >= len(content):
            self._send_status(416, {"Content-Range": f"bytes */{len(content)}"})
            return
        body = content[start or 0 :]
        self.send_response(200 if start is None else 206)
        self.send_header("Content-Type", "image/tiff")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if start is not None:
            self.send_header("Content-Range", f"bytes {start}-{len(content) - 1}/{len(content)}")
        self.end_headers()
        if not send_body:
            return
        if cut is None:
            self.wfile.write(body)
            return
        self.wfile.write(body[:cut])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def _range_start(self, range_header: str | None) -> int | None:
        if range_header is None or self.behaviour.ignore_range:
            return None
        match = _RANGE.match(range_header)
        return int(match.group(1)) if match else None

    def _send_status(self, status: int, headers: dict[str, str]) -> None:
        body = f'{{"code": "{status}"}}'.encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
