"""HTTP-level stand-ins for third-party services: a local server that records every
request and answers from a script of failures, then with its default answer."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class FakeService:
    """Answers ``default`` unless replies were queued with ``fail_next``."""

    def __init__(self, default: Reply | None = None) -> None:
        self.default = default or Reply(202, None, {"X-Message-Id": "fake-message-id"})
        self.requests: list[Recorded] = []
        self._script: list[Reply] = []
        self._lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with service._lock:
                    reply = service._script.pop(0) if service._script else service.default
                    service.requests.append(
                        Recorded(
                            self.command,
                            self.path,
                            dict(self.headers),
                            body,
                            reply.status,
                            time.monotonic(),
                        )
                    )
                if isinstance(reply.body, str):
                    payload, kind = reply.body.encode(), "text/plain"
                else:
                    payload = b"" if reply.body is None else json.dumps(reply.body).encode()
                    kind = "application/json"
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def fail_next(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def succeeded(self) -> list[Recorded]:
        return [r for r in self.requests if 200 <= r.status < 300]

    def __enter__(self) -> FakeService:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
