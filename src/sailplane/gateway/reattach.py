"""Sail's answer to a reattachment for an operation it never saw, in the words Spark clients act on.

A Spark Connect client gives every ExecutePlan an operation id. When the call breaks before any
answer (the control plane restarts and its gateway is gone for a moment), the client cannot tell
whether Sail got it, so it sends `ReattachExecute` for that id; a server that never saw the operation
says `INVALID_HANDLE.OPERATION_NOT_FOUND` (in the status message, and as the error class of the
`google.rpc.ErrorInfo` in `grpc-status-details-bin`), and the client then sends the ExecutePlan
again. That is the only answer PySpark re-sends on (`reattach.py`, `_call_iter`). Sail answers
`INTERNAL: invalid argument: operation not found: <id>` instead, so the client gave up: one failed
call per client per restart. The gateway rewrites that one answer (only for ReattachExecute calls,
only for an operation Sail says it never saw; "task context not found" means it saw it) and passes
every other answer through untouched.

The rewritten block is encoded without the HPACK dynamic table, and only a block that did not add to
the dynamic table is replaced (the relay asks Sail not to use one: `relay.py`), so the client's
decoder stays in step with Sail's encoder.
"""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote, unquote

from hpack import Decoder, Encoder, HPACKError, NeverIndexedHeaderTuple

from sailplane.gateway.http2 import GRPC_MESSAGE_SAFE

METHOD = "ReattachExecute"
OPERATION_NOT_FOUND = "INVALID_HANDLE.OPERATION_NOT_FOUND"
_SAIL_NOT_FOUND = re.compile(r"\boperation not found(?::\s*(\S+))?", re.IGNORECASE)
_ERROR_INFO_URL = "type.googleapis.com/google.rpc.ErrorInfo"
_SPARK_CLASS = "org.apache.spark.SparkSQLException"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def status_details(code: int, message: str, error_class: str, parameters: dict[str, str]) -> bytes:
    """`google.rpc.Status{code, message, details: [Any(google.rpc.ErrorInfo)]}` as Spark Connect servers send it."""
    metadata = {"errorClass": error_class, "sqlState": "HY000", "classes": json.dumps([_SPARK_CLASS]),
                "messageParameters": json.dumps(parameters)}
    info = _field(1, _SPARK_CLASS.encode()) + _field(2, b"org.apache.spark") + b"".join(
        _field(3, _field(1, k.encode()) + _field(2, v.encode())) for k, v in metadata.items())
    detail = _field(1, _ERROR_INFO_URL.encode()) + _field(2, info)
    return _varint(1 << 3) + _varint(code) + _field(2, message.encode()) + _field(3, detail)


def translate(block: bytes) -> bytes | None:
    """The header block to send instead of `block` (the end of a ReattachExecute response), or None to
    send it unchanged."""
    decoder = Decoder()
    try:
        headers = decoder.decode(block, raw=True)
    except (HPACKError, IndexError, ValueError):
        return None  # it refers to the dynamic table: not ours to rewrite
    if decoder.header_table.dynamic_entries:
        return None  # it taught the client's decoder something: dropping it would desynchronize them
    fields = {bytes(name): bytes(value) for name, value in headers}
    status, raw_message = fields.get(b"grpc-status"), fields.get(b"grpc-message")
    if status in (None, b"0") or raw_message is None:
        return None
    message = unquote(raw_message.decode(errors="replace"))
    found = _SAIL_NOT_FOUND.search(message)
    if found is None or OPERATION_NOT_FOUND in message:
        return None
    handle = found.group(1) or "<unknown>"
    text = (f"[{OPERATION_NOT_FOUND}] The handle {handle} is invalid. Operation not found. SQLSTATE: HY000 "
            f"(Sail: {message})")
    code = int(status) if status.isdigit() else 13
    details = base64.b64encode(status_details(code, text, OPERATION_NOT_FOUND, {"handle": handle})).rstrip(b"=")
    kept = [(bytes(n), bytes(v)) for n, v in headers if bytes(n) not in (b"grpc-message", b"grpc-status-details-bin")]
    kept += [(b"grpc-message", quote(text, safe=GRPC_MESSAGE_SAFE).encode()), (b"grpc-status-details-bin", details)]
    return Encoder().encode([NeverIndexedHeaderTuple(n, v) for n, v in kept], huffman=False)
