"""Two createNetwork requests with overlapping ranges on one connection at the same moment: one is recorded, the
other answers 409 `network_cidr_overlap` (the connection's row serializes the check and the insert). Against the
real server, on SQLite and PostgreSQL; several rounds, released together by a barrier."""

from __future__ import annotations

import threading
from typing import Any

from tests.infra.helpers import verified
from tests.support.actors import signup


def test_concurrent_overlapping_creates_record_one(infra_api: str, customer_aws: Any) -> None:
    owner = signup(infra_api)
    conn_id = verified(owner, customer_aws)["id"]
    base = f"/infra/connections/{conn_id}/networks"
    for i in range(6):
        cidrs = [f"10.{120 + i}.0.0/16", f"10.{120 + i}.0.0/20"]  # the second inside the first
        barrier = threading.Barrier(2)
        answers: list[Any] = [None, None]

        def create(k: int, cidrs: list[str] = cidrs, barrier: threading.Barrier = barrier,
                   answers: list[Any] = answers, i: int = i) -> None:
            barrier.wait()
            answers[k] = owner.post(base, json={"name": f"race-{i}-{k}", "config": {"cidr": cidrs[k]}})

        threads = [threading.Thread(target=create, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        codes = sorted(a.status_code for a in answers)
        assert codes == [201, 409], [a.text for a in answers]
        refused = next(a for a in answers if a.status_code == 409).json()["error"]
        assert refused["code"] == "network_cidr_overlap" and "config.cidr" in refused["details"]["fieldErrors"]
    listed = owner.get(base, params={"pageSize": 100}).json()["items"]
    assert len(listed) == 6
