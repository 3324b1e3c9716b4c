"""Just enough HTTP/2 (RFC 9113) for a relay that reads frame headers and rewrites request headers.

The relay never decodes gRPC messages and, on the way back, never decodes anything but frame
headers: DATA payloads are passed through as slices of what the socket delivered.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from urllib.parse import quote

from hpack import Encoder, NeverIndexedHeaderTuple

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_HEADER = 9
MIN_MAX_FRAME_SIZE = 16_384  # every peer accepts frames this large (SETTINGS_MAX_FRAME_SIZE floor)

# Frame types
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
# Flags
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20
# SETTINGS parameters
SETTINGS_HEADER_TABLE_SIZE = 0x1


class Action(IntEnum):
    """What a scanner does with a frame whose header it has just read."""

    PASS = 0  # copy the frame through, payload streamed as it arrives
    DROP = 1  # skip the frame
    COLLECT = 2  # buffer the whole frame and hand it to the frame callback


HeaderCallback = Callable[[int, int, int, int], Action]
"""(type, flags, stream, length) → action. Called again for a COLLECT frame that has not fully
arrived yet, so it must only have side effects for PASS and DROP."""
FrameCallback = Callable[[int, int, int, bytes], bytes | None]
"""(type, flags, stream, payload) → bytes to emit in the frame's place (None for nothing)."""


class FrameScanner:
    """Walks one direction of an HTTP/2 connection frame by frame, without copying passed-through payloads."""

    def __init__(self, on_header: HeaderCallback, on_frame: FrameCallback):
        self._on_header = on_header
        self._on_frame = on_frame
        self._leftover = b""
        self._remaining = 0  # payload bytes of the current PASS/DROP frame still to come
        self._passing = False

    @property
    def at_boundary(self) -> bool:
        """False while a passed-through frame is half sent: anywhere else another frame may be inserted."""
        return not (self._remaining and self._passing)

    def feed(self, data: bytes) -> list[bytes | memoryview]:
        """Consume bytes; returns the pieces to send on, in order."""
        if self._leftover:
            data, self._leftover = self._leftover + data, b""
        out: list[bytes | memoryview] = []
        view = memoryview(data)
        pos, end = 0, len(data)
        while pos < end:
            if self._remaining:
                take = min(self._remaining, end - pos)
                if self._passing:
                    out.append(view[pos : pos + take])
                pos += take
                self._remaining -= take
                continue
            if end - pos < FRAME_HEADER:
                break
            length = int.from_bytes(data[pos : pos + 3], "big")
            ftype, flags = data[pos + 3], data[pos + 4]
            stream = int.from_bytes(data[pos + 5 : pos + 9], "big") & 0x7FFF_FFFF
            action = self._on_header(ftype, flags, stream, length)
            if action is Action.COLLECT:
                if end - pos < FRAME_HEADER + length:
                    break
                start = pos + FRAME_HEADER
                pos = start + length
                emitted = self._on_frame(ftype, flags, stream, data[start:pos])
                if emitted:
                    out.append(emitted)
                continue
            if action is Action.PASS:
                out.append(view[pos : pos + FRAME_HEADER])
            self._passing = action is Action.PASS
            self._remaining = length
            pos += FRAME_HEADER
        if pos < end:
            self._leftover = bytes(view[pos:])
        return out


def frame(ftype: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((ftype, flags)) + stream.to_bytes(4, "big") + payload


def header_block_fragment(flags: int, payload: bytes) -> bytes:
    """A HEADERS payload without its padding and priority fields."""
    start, pad = 0, 0
    if flags & PADDED:
        pad, start = payload[0], 1
    if flags & PRIORITY_FLAG:
        start += 5
    return payload[start : len(payload) - pad]


def headers_frames(stream: int, block: bytes, *, end_stream: bool) -> bytes:
    """HEADERS (+ CONTINUATION) frames carrying a complete header block."""
    flags = END_STREAM if end_stream else 0
    chunks = [block[i : i + MIN_MAX_FRAME_SIZE] for i in range(0, len(block), MIN_MAX_FRAME_SIZE)] or [b""]
    out = []
    for i, chunk in enumerate(chunks):
        last = END_HEADERS if i == len(chunks) - 1 else 0
        out.append(frame(HEADERS if i == 0 else CONTINUATION, (flags if i == 0 else 0) | last, stream, chunk))
    return b"".join(out)


def settings_values(payload: bytes) -> dict[int, int]:
    return {
        int.from_bytes(payload[i : i + 2], "big"): int.from_bytes(payload[i + 2 : i + 6], "big")
        for i in range(0, len(payload) - len(payload) % 6, 6)
    }


def with_setting(payload: bytes, key: int, value: int) -> bytes:
    """A SETTINGS payload with `key` set to `value` (replaced where present, else appended)."""
    out = bytearray()
    for i in range(0, len(payload) - len(payload) % 6, 6):
        if int.from_bytes(payload[i : i + 2], "big") != key:
            out += payload[i : i + 6]
    return bytes(out) + key.to_bytes(2, "big") + value.to_bytes(4, "big")


def window_update(stream: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream, increment.to_bytes(4, "big"))


def goaway(last_stream: int, error_code: int = 0, debug: bytes = b"") -> bytes:
    return frame(GOAWAY, 0, 0, last_stream.to_bytes(4, "big") + error_code.to_bytes(4, "big") + debug)


# grpc-message is percent-encoded: everything outside printable ASCII, and '%' itself.
GRPC_MESSAGE_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


def grpc_status_block(code: int, message: str) -> bytes:
    """A trailers-only gRPC response header block.

    Encoded only with the static table and never-indexed literals, so it can be slipped between the
    frames of another encoder (Sail's) without touching the dynamic table the client shares with it.
    """
    encoder = Encoder()
    return encoder.encode(
        [
            NeverIndexedHeaderTuple(":status", "200"),
            NeverIndexedHeaderTuple("content-type", "application/grpc"),
            NeverIndexedHeaderTuple("grpc-status", str(code)),
            NeverIndexedHeaderTuple("grpc-message", quote(message, safe=GRPC_MESSAGE_SAFE)),
        ],
        huffman=False,
    )
