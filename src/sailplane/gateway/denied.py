"""The one exception the gateway's injected hooks raise to refuse a call."""

from __future__ import annotations

import grpc


class GatewayDenied(Exception):
    """Raised by a resolver or holder check to refuse a call; `code` and `message` go to the client as
    the gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    @classmethod
    def unauthenticated(cls, message: str) -> GatewayDenied:
        return cls(grpc.StatusCode.UNAUTHENTICATED, message)

    @classmethod
    def permission_denied(cls, message: str) -> GatewayDenied:
        return cls(grpc.StatusCode.PERMISSION_DENIED, message)

    @classmethod
    def unavailable(cls, message: str) -> GatewayDenied:
        return cls(grpc.StatusCode.UNAVAILABLE, message)
