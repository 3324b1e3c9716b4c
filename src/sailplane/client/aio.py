"""The asyncio client (httpx.AsyncClient): the same operations and behaviour as `sync.Client`, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import httpx

from sailplane.client.core import Core, LogChunk, next_query, server_trust
from sailplane.client.errors import ServerUnreachableError
from sailplane.client.operations import Operations
from sailplane.client.spec import operation


class AsyncClient(Operations[Awaitable[Any]]):
    def __init__(self, base_url: str, *, token: str | None = None, organization_id: str | None = None,
                 timeout: float = 30.0, max_retries: int = 3, max_retry_wait: float = 30.0,
                 http: httpx.AsyncClient | None = None) -> None:
        self.core = Core(base_url, token, organization_id, max_retries, max_retry_wait)
        self.http = http or httpx.AsyncClient(timeout=timeout, verify=server_trust(self.core.base_url))

    @property
    def token(self) -> str | None:
        return self.core.token

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def call(self, operation_id: str, path_params: dict[str, str] | None = None, body: Any = None,
                   query: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Any:
        request = self.core.build(operation_id, path_params, body, query, headers)
        attempt = 0
        while True:
            try:
                response = await self.http.request(request.method, request.url, params=request.params,
                                                   json=request.json, headers=request.headers)
            except httpx.TransportError as exc:
                raise ServerUnreachableError(f"cannot reach {self.core.base_url}: {exc}") from exc
            delay = self.core.retry_delay(response, attempt)
            if delay is None:
                return self.core.result(request, response)
            attempt += 1
            await asyncio.sleep(delay)

    async def pages(self, operation_id: str, path_params: dict[str, str] | None = None,
                    query: dict[str, Any] | None = None) -> AsyncIterator[Any]:
        op = operation(operation_id)
        next_page: dict[str, Any] | None = dict(query or {})
        while next_page is not None:
            body = await self.call(operation_id, path_params, query=next_page)
            yield body
            next_page = next_query(op, body, next_page)

    async def iterate(self, operation_id: str, path_params: dict[str, str] | None = None,
                      query: dict[str, Any] | None = None) -> AsyncIterator[Any]:
        async for body in self.pages(operation_id, path_params, query):
            for item in body.get("items") or []:
                yield item

    async def read_logs(self, job: str, run: str, *, offset: int = 0) -> AsyncIterator[LogChunk]:
        while True:
            chunk: LogChunk = await self.job_run_logs(job, run, offset=offset)
            if not chunk.text:
                return
            yield chunk
            offset = chunk.offset

    async def follow_logs(self, job: str, run: str, *, offset: int = 0,
                          interval: float = 0.5) -> AsyncIterator[LogChunk]:
        while True:
            chunk: LogChunk = await self.job_run_logs(job, run, offset=offset)
            if chunk.text:
                yield chunk
            if chunk.finished and not chunk.text:
                return
            offset = chunk.offset
            if not chunk.text:
                await asyncio.sleep(interval)
