"""Real HTTP receivers on loopback for notifier tests: Telegram-compatible and webhooks."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver(ThreadingHTTPServer):
    """Records every POST; ``script`` says how to answer the next ones (then 200)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        self.script: list[tuple[int, dict[str, Any]]] = []
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def texts(self) -> list[str]:
        return [json.loads(body)["text"] for path, _h, body in self.posts
                if path.endswith("/sendMessage")]


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status, answer = self.server.script.pop(0) if self.server.script else (200, {"ok": True})
        if status == 200:
            self.server.posts.append((self.path, dict(self.headers), body))
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: object) -> None:
        return


@contextmanager
def serving() -> Iterator[Receiver]:
    """A started receiver, shut down and closed afterwards."""
    server = Receiver()
    server.thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
