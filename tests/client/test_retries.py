"""Retries on 429/503 against a real loopback HTTP server: Retry-After is honoured, retries are bounded, a wait
longer than the client accepts is not retried, and a retried run creation keeps its Idempotency-Key."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from sailplane.client import Client, RateLimitError, UnavailableError
from tests.support.receiver import Answer, Receiver

RUNS = "/api/v1/workloads/jobs/J1/runs"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    try:
        yield r
    finally:
        r.stop()


def _error(status: int, code: str) -> bytes:
    return (b'{"error": {"code": "%s", "message": "Slow down.", "errorType": "rate_limit", '
            b'"details": {"requestId": "REQ1"}}}' % code.encode())


def test_429_waits_for_retry_after_and_keeps_the_idempotency_key(receiver: Receiver) -> None:
    receiver.answer(Answer(429, headers={"Retry-After": "1", **JSON}, body=_error(429, "rate_limited")),
                    Answer(503, headers={"Retry-After": "0", **JSON}, body=_error(503, "overloaded")),
                    Answer(201, headers=JSON, body=b'{"id": "R1", "status": "ready"}'))
    with Client(receiver.url, token="t") as client:
        started = time.monotonic()
        run = client.create_job_run("J1")
        elapsed = time.monotonic() - started
    assert run == {"id": "R1", "status": "ready"}
    sent = receiver.at(RUNS)
    assert len(sent) == 3
    assert sent[1].at - sent[0].at >= 1.0 and elapsed >= 1.0
    keys = {r.headers["idempotency-key"] for r in sent}
    assert len(keys) == 1 and keys != {""}


def test_retries_are_bounded(receiver: Receiver) -> None:
    receiver.answer(*[Answer(429, headers={"Retry-After": "0", **JSON}, body=_error(429, "rate_limited"))] * 10)
    with Client(receiver.url, token="t", max_retries=2) as client, pytest.raises(RateLimitError) as limited:
        client.create_job_run("J1")
    assert len(receiver.at(RUNS)) == 3
    assert limited.value.code == "rate_limited" and limited.value.request_id == "REQ1"


def test_a_longer_wait_than_accepted_is_not_retried(receiver: Receiver) -> None:
    receiver.answer(Answer(503, headers={"Retry-After": "120", **JSON}, body=_error(503, "overloaded")))
    with Client(receiver.url, token="t", max_retry_wait=5) as client, pytest.raises(UnavailableError) as busy:
        client.create_job_run("J1")
    assert len(receiver.at(RUNS)) == 1 and busy.value.retry_after == 120


def test_a_503_that_waiting_does_not_cure_is_not_retried(receiver: Receiver) -> None:
    receiver.answer(Answer(503, headers=JSON, body=_error(503, "compute_unavailable")))
    with Client(receiver.url, token="t") as client, pytest.raises(UnavailableError) as off:
        client.create_job_run("J1")
    assert len(receiver.at(RUNS)) == 1 and off.value.code == "compute_unavailable"


def test_the_async_client_retries_the_same_way(receiver: Receiver) -> None:
    import asyncio

    from sailplane.client import AsyncClient

    receiver.answer(Answer(429, headers={"Retry-After": "1", **JSON}, body=_error(429, "rate_limited")),
                    Answer(201, headers=JSON, body=b'{"id": "R2", "status": "ready"}'))

    async def create() -> object:
        async with AsyncClient(receiver.url, token="t") as client:
            return await client.create_job_run("J1", idempotency_key="mine")

    assert asyncio.run(create()) == {"id": "R2", "status": "ready"}
    sent = receiver.at(RUNS)
    assert len(sent) == 2 and sent[1].at - sent[0].at >= 1.0
    assert [r.headers["idempotency-key"] for r in sent] == ["mine", "mine"]
