"""The SDK against a real server: sign-in, lists page by page, typed errors with the request ID, runs created
once per Idempotency-Key, logs; and the async client doing the same."""

from __future__ import annotations

import asyncio

import pytest

from sailplane.client import (
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    Client,
    ConflictError,
    LogChunk,
    NotFoundError,
    ServerUnreachableError,
)
from tests.support.actors import PASSWORD, signup
from tests.support.server import LiveServer
from tests.support.world import create_team


def test_sign_in_lists_and_errors(sdk_server: LiveServer) -> None:
    owner = signup(f"{sdk_server.url}/api/v1")
    names = sorted(f"SDK team {i}" for i in range(5))
    for name in names:
        create_team(owner, name)
    with Client(sdk_server.url) as client:
        answer = client.login(owner.email or "", PASSWORD)
        assert client.token == answer["token"]
        assert client.me()["user"]["id"] == owner.user_id
        # page lists: 5 teams 2 by 2 come back once each, in order
        teams = [item["team"]["name"] for item in client.iterate("listTeams", query={"limit": 2})]
        assert [t for t in teams if t.startswith("SDK team")] == names
        with pytest.raises(NotFoundError) as missing:
            client.describe_team("01JB00000000000000AB")
        assert missing.value.status == 404 and missing.value.code == "not_found" and missing.value.request_id
        with pytest.raises(BadRequestError) as invalid:
            client.call("createTeam", body={"name": ""})
        assert invalid.value.status == 422 and "name" in invalid.value.field_errors
    with Client(sdk_server.url) as anonymous, pytest.raises(AuthenticationError) as wrong:
        anonymous.login(owner.email or "", "not-the-password-at-all")
    assert wrong.value.status == 401 and wrong.value.message
    with Client(sdk_server.url, token="not-a-token") as stranger, pytest.raises(AuthenticationError):
        stranger.me()


def test_runs_pages_idempotency_and_logs(sdk_server: LiveServer) -> None:
    owner = signup(f"{sdk_server.url}/api/v1")
    team = create_team(owner, "SDK runs")
    with Client(sdk_server.url, token=owner.token) as client:
        job = client.create_job({"jobKey": "sdk-job", "clusterId": "LOCAL", "teamIds": [team],
                                 "config": {"python": {"source": "print('hi')\n"}}})
        first = client.create_job_run(job["id"], hold=True, idempotency_key="sdk-key-1")
        again = client.create_job_run(job["id"], hold=True, idempotency_key="sdk-key-1")
        assert again["id"] == first["id"]
        others = [client.create_job_run(job["id"], hold=True)["id"] for _ in range(2)]  # a fresh key each
        assert len({first["id"], *others}) == 3
        # marker lists: one run per page, every run once
        pages = list(client.pages("listJobRuns", {"job": job["id"]}, query={"limit": 1}))
        seen = [run["id"] for page in pages for run in page["included"]["jobRuns"]]
        assert len(pages) >= 3 and sorted(seen) == sorted([first["id"], *others])
        assert [item["jobRunId"] for item in client.iterate("listJobRuns", {"job": job["id"]})] == seen
        client.cancel_job_run(job["id"], first["id"])
        with pytest.raises(ConflictError) as twice:
            client.cancel_job_run(job["id"], first["id"])
        assert twice.value.code and twice.value.request_id
        chunk = client.job_run_logs(job["id"], first["id"])
        assert isinstance(chunk, LogChunk) and chunk.status == "cancelled" and chunk.finished
        assert [c.text for c in client.follow_logs(job["id"], first["id"], interval=0.05)] == (
            [chunk.text] if chunk.text else [])


def test_the_async_client_does_the_same(sdk_server: LiveServer) -> None:
    owner = signup(f"{sdk_server.url}/api/v1")
    team = create_team(owner, "SDK async")

    async def journey() -> None:
        async with AsyncClient(f"{sdk_server.url}/api/v1") as client:
            await client.login(owner.email or "", PASSWORD)
            teams = [item["team"]["id"] async for item in client.iterate("listTeams", query={"limit": 1})]
            assert team in teams
            job = await client.create_job({"jobKey": "sdk-async", "clusterId": "LOCAL", "teamIds": [team],
                                           "config": {"python": {"source": "print('hi')\n"}}})
            run = await client.create_job_run(job["id"], hold=True)
            assert (await client.describe_job_run(job["id"], run["id"]))["status"] == "pending"
            with pytest.raises(NotFoundError):
                await client.describe_job_run(job["id"], "01JB00000000000000AB")

    asyncio.run(journey())


def test_a_server_that_is_down_is_one_clear_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with Client(f"http://127.0.0.1:{port}") as client, pytest.raises(ServerUnreachableError) as down:
        client.me()
    assert f"127.0.0.1:{port}" in str(down.value)
