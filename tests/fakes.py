"""HTTP-level stand-ins for third-party services: a local server that records every
request and answers from a script of failures, then with its default answer."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
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
    # Seconds the provider takes before it answers (recorded on arrival).
    delay: float = 0.0


class _BusyServer(ThreadingHTTPServer):
    # Hundreds of concurrent connections (the rate-limit tests) must not be refused.
    request_queue_size = 1024
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away before the answer (a killed worker) is no error here:
        # the request is recorded, as a provider would have acted on it.
        pass


class FakeService:
    """Answers ``default`` unless replies were queued with ``fail_next``, or ``respond``
    (method, path, body) answers the request itself. ``check`` judges each request body:
    a problem it names is answered 400 with that text. While ``hold``
    is set, each request is recorded and then waits until ``release()``."""

    def __init__(
        self,
        default: Reply | None = None,
        check: Callable[[bytes, dict[str, str]], str | None] | None = None,
    ) -> None:
        self.default = default or Reply(202, None, {"X-Message-Id": "fake-message-id"})
        self.respond: Callable[[str, str, bytes], Reply | None] | None = None
        self.requests: list[Recorded] = []
        self.hold = threading.Event()
        self._released = threading.Event()
        self._script: list[Reply] = []
        self._lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                problem = check(body, dict(self.headers)) if check else None
                with service._lock:
                    scripted = service._script.pop(0) if service._script else None
                    answered = None
                    # A scripted 5xx stands for an answer lost after the change was made;
                    # a scripted 4xx for a refusal, which changes nothing.
                    if service.respond and (scripted is None or scripted.status >= 500):
                        answered = service.respond(self.command, self.path, body)
                    reply = scripted or answered or service.default
                    if problem is not None and 200 <= reply.status < 300:
                        reply = Reply(400, {"error": problem})
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
                if service.hold.is_set():
                    service._released.wait()
                time.sleep(reply.delay)
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

        self._server = _BusyServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def release(self) -> None:
        """Let every held request (and those to come) be answered."""
        self.hold.clear()
        self._released.set()

    def fail_next(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def succeeded(self) -> list[Recorded]:
        return [r for r in self.requests if 200 <= r.status < 300]

    def __enter__(self) -> FakeService:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()


ADAPTIVE_CARD_SCHEMA = "schema-1.4.json"


def teams_card_problem(body: bytes, headers: dict[str, str]) -> str | None:
    """What a Teams webhook would refuse in a message: not a ``message`` with one
    Adaptive Card attachment, or a card that breaks the Adaptive Cards 1.4 schema."""
    import importlib.resources

    import jsonschema

    try:
        message = json.loads(body)
        [attachment] = message["attachments"]
    except (ValueError, KeyError, TypeError):
        return "not a message with one attachment"
    if message.get("type") != "message":
        return "type must be message"
    if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
        return "the attachment is not an Adaptive Card"
    schema_file = importlib.resources.files("adaptive_cards") / "schemas" / ADAPTIVE_CARD_SCHEMA
    schema = json.loads(schema_file.read_text())
    errors = list(jsonschema.Draft6Validator(schema).iter_errors(attachment["content"]))
    return "; ".join(e.message for e in errors) or None


class PmsTasks:
    """Task assignees as a PMS keeps them, for ``FakeService.respond``: a PUT to
    ``.../tasks/<id>/assignee`` sets it, a GET reads it (404 when nobody), a DELETE
    clears it. A scripted 5xx answer still applies the change (an answer lost on the way
    back). Other paths are left to the fake's default."""

    def __init__(self) -> None:
        self.assignees: dict[str, str] = {}
        # Make every assignment PUT, then answer 500 as if the answer were lost.
        self.lose_assignment_answers = False

    def __call__(self, method: str, path: str, body: bytes) -> Reply | None:
        parts = path.split("/")
        if len(parts) < 3 or parts[-1] != "assignee" or parts[-3] != "tasks":
            return None
        task = urllib.parse.unquote(parts[-2])
        if method == "PUT":
            self.assignees[task] = json.loads(body)["staffId"]
            if self.lose_assignment_answers:
                return Reply(500, {"message": "gateway timeout"})
        elif method == "DELETE":
            self.assignees.pop(task, None)
        elif task not in self.assignees:
            return Reply(404, {"message": "nobody holds the task"})
        else:
            return Reply(200, {"staffId": self.assignees[task]})
        return Reply(200, {"updated": True})


class FakeLikeMagic:
    """The LIKE MAGIC identity provider and Open API, as a local server.

    ``POST /token`` issues client-credentials tokens (counted in ``tokens``) to the
    one client it knows, read from the form body or HTTP Basic; ``GET
    /api/profiles/<id>`` answers the profile in ``profiles`` (404 otherwise) to a
    bearer token it issued and has not revoked (401 otherwise). ``fail_next`` queues
    answers of the profile endpoint (500, 429 ...); ``delay`` slows every answer;
    ``rate``/``burst`` set a token-bucket rate limit answered with 429 and
    ``Retry-After: 1``, as the platform does.
    """

    CLIENT_ID = "svc-reactor"
    CLIENT_SECRET = "s3cret-client-value-0123"

    def __init__(self, expires_in: int = 300) -> None:
        self.expires_in = expires_in
        self.profiles: dict[str, dict[str, Any]] = {}
        self.tokens: list[str] = []
        self.revoked: set[str] = set()
        self.requests: list[Recorded] = []
        self.token_requests: list[Recorded] = []
        # The most token requests the server was answering at once.
        self.most_token_requests_at_once = 0
        self._token_in_flight = 0
        self.delay = 0.0
        self.rate: float | None = None
        self.burst = 1.0
        self._level = 0.0
        self._level_at = time.monotonic()
        self._script: list[Reply] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                form = dict(urllib.parse.parse_qsl(body.decode()))
                client = (form.get("client_id"), form.get("client_secret"))
                basic = self.headers.get("Authorization", "")
                if basic.startswith("Basic "):
                    pair = base64.b64decode(basic[6:]).decode().split(":", 1)
                    client = (
                        urllib.parse.unquote(pair[0]),
                        urllib.parse.unquote(pair[1]),
                    )
                with fake._lock:
                    fake._token_in_flight += 1
                    fake.most_token_requests_at_once = max(
                        fake.most_token_requests_at_once, fake._token_in_flight
                    )
                    recorded = Recorded(
                        "POST", self.path, dict(self.headers), body, 200, time.monotonic()
                    )
                    fake.token_requests.append(recorded)
                    known = client == (fake.CLIENT_ID, fake.CLIENT_SECRET)
                    if known and form.get("grant_type") == "client_credentials":
                        token = f"tok-{len(fake.tokens) + 1}-{uuid.uuid4().hex[:6]}"
                        fake.tokens.append(token)
                    else:
                        token = None
                time.sleep(fake.delay)
                with fake._lock:
                    fake._token_in_flight -= 1
                if token is None:
                    recorded.status = 401
                    self._reply(401, {"error": "invalid_client"})
                    return
                self._reply(
                    200,
                    {"access_token": token, "token_type": "Bearer", "expires_in": fake.expires_in},
                )

            def do_GET(self) -> None:
                bearer = self.headers.get("Authorization", "").removeprefix("Bearer ")
                with fake._lock:
                    status, body, headers = fake._answer(self.path, bearer)
                    fake.requests.append(
                        Recorded(
                            "GET", self.path, dict(self.headers), b"", status, time.monotonic()
                        )
                    )
                time.sleep(fake.delay)
                self._reply(status, body, headers)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _BusyServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def _answer(self, path: str, bearer: str) -> tuple[int, Any, dict[str, str]]:
        """The answer to a GET (called under the lock)."""
        if bearer not in self.tokens or bearer in self.revoked:
            return 401, {"message": "invalid token"}, {}
        if self.rate is not None:
            now = time.monotonic()
            self._level = max(0.0, self._level - (now - self._level_at) * self.rate)
            self._level_at = now
            if self._level + 1 > self.burst:
                return 429, {"message": "rate limit exceeded"}, {"Retry-After": "1"}
            self._level += 1
        if self._script:
            reply = self._script.pop(0)
            return reply.status, reply.body, reply.headers
        profile_id = path.rsplit("/", 1)[-1]
        if path.startswith("/api/profiles/") and profile_id in self.profiles:
            return 200, self.profiles[profile_id], {}
        return 404, {"message": f"profile {profile_id} not found"}, {}

    def fail_next(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def settings(self, **more: Any) -> dict[str, Any]:
        """Settings that point reactor's Open API client here."""
        return {
            "LIKEMAGIC_API_URL": f"{self.url}/api",
            "LIKEMAGIC_TOKEN_URL": f"{self.url}/token",
            "LIKEMAGIC_CLIENT_ID": self.CLIENT_ID,
            "LIKEMAGIC_CLIENT_SECRET": self.CLIENT_SECRET,
            **more,
        }

    def __enter__(self) -> FakeLikeMagic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
