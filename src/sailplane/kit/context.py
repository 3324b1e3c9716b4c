"""Who is calling from where: what the audit log and login records need from a request."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request


@dataclass(frozen=True)
class RequestContext:
    ip_address: str | None
    user_agent: str | None
    request_id: str | None


async def request_context(request: Request) -> RequestContext:
    client = request.client.host if request.client else None
    return RequestContext(
        ip_address=client,
        user_agent=(request.headers.get("user-agent") or "")[:512] or None,
        request_id=getattr(request.state, "request_id", None),
    )
