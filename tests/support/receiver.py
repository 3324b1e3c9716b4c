"""A real HTTP receiver on loopback for outgoing notifications (webhooks, Slack, PagerDuty, Rootly): it records
every request (method, path, headers, raw body) and answers from a script: a status (500, 429 with Retry-After…),
a delay, then 200 for everything after the script."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)

    def signature_valid(self, secret: str) -> bool:
        """The receiver's check of `LakeSail-Signature: sha256=<hex HMAC-SHA256 of the raw body>`."""
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.headers.get("lakesail-signature", ""))


@dataclass(frozen=True)
class Answer:
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"ok":true}'


class Receiver:
    def __init__(self, default: Answer | None = None) -> None:
        """`default`: the answer once the script is done (200 with a small JSON body unless given)."""
        self.default = default or Answer()
        self.requests: list[Received] = []
        self.script: deque[Answer] = deque()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.requests.append(Received("POST", self.path, headers, body, time.time()))
                    answer = receiver.script.popleft() if receiver.script else receiver.default
                if answer.delay:
                    time.sleep(answer.delay)
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, *answers: Answer) -> None:
        with self.lock:
            self.script.extend(answers)

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]
