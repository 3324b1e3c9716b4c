"""The blocking client (httpx.Client)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx

from sailplane.client.core import Core, LogChunk, next_query, server_trust
from sailplane.client.errors import ServerUnreachableError
from sailplane.client.operations import Operations
from sailplane.client.spec import operation


class Client(Operations[Any]):
    """`Client("https://sailplane.example.com", token=…)`; every operation of the API through
    `call(operationId, path_params, body, query)`, the common ones as methods, lists through `iterate`."""

    def __init__(self, base_url: str, *, token: str | None = None, organization_id: str | None = None,
                 timeout: float = 30.0, max_retries: int = 3, max_retry_wait: float = 30.0,
                 http: httpx.Client | None = None) -> None:
        self.core = Core(base_url, token, organization_id, max_retries, max_retry_wait)
        self.http = http or httpx.Client(timeout=timeout, verify=server_trust(self.core.base_url))

    @property
    def token(self) -> str | None:
        return self.core.token

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def call(self, operation_id: str, path_params: dict[str, str] | None = None, body: Any = None,
             query: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Any:
        request = self.core.build(operation_id, path_params, body, query, headers)
        attempt = 0
        while True:
            try:
                response = self.http.request(request.method, request.url, params=request.params,
                                             json=request.json, headers=request.headers)
            except httpx.TransportError as exc:
                raise ServerUnreachableError(f"cannot reach {self.core.base_url}: {exc}") from exc
            delay = self.core.retry_delay(response, attempt)
            if delay is None:
                return self.core.result(request, response)
            attempt += 1
            time.sleep(delay)

    def pages(self, operation_id: str, path_params: dict[str, str] | None = None,
              query: dict[str, Any] | None = None) -> Iterator[Any]:
        """Every page of a list (`marker` or `page`, as the operation pages), with its `included` records."""
        op = operation(operation_id)
        next_page: dict[str, Any] | None = dict(query or {})
        while next_page is not None:
            body = self.call(operation_id, path_params, query=next_page)
            yield body
            next_page = next_query(op, body, next_page)

    def iterate(self, operation_id: str, path_params: dict[str, str] | None = None,
                query: dict[str, Any] | None = None) -> Iterator[Any]:
        """Every item of a list, page after page."""
        for body in self.pages(operation_id, path_params, query):
            yield from body.get("items") or []

    def read_logs(self, job: str, run: str, *, offset: int = 0) -> Iterator[LogChunk]:
        """The run's output written so far, chunk after chunk (the server answers at most 1 MiB a call)."""
        while True:
            chunk: LogChunk = self.job_run_logs(job, run, offset=offset)
            if not chunk.text:
                return
            yield chunk
            offset = chunk.offset

    def follow_logs(self, job: str, run: str, *, offset: int = 0, interval: float = 0.5) -> Iterator[LogChunk]:
        """The run's output as it is written, until the run has ended and everything was read."""
        while True:
            chunk: LogChunk = self.job_run_logs(job, run, offset=offset)
            if chunk.text:
                yield chunk
            if chunk.finished and not chunk.text:
                return
            offset = chunk.offset
            if not chunk.text:
                time.sleep(interval)
