"""One client connection of the gateway, relayed to one Sail server at the HTTP/2 frame level.

Why frames and not gRPC calls: a gRPC proxy in Python re-frames every message twice and costs more
than the query itself (`select 1` took 1.8x as long through a bare grpc.aio proxy; see
bench/gateway_bench.py). Here every request's header block is decoded and checked (token, session,
service), the token is stripped and the block re-encoded for Sail; everything else — messages,
responses, status, trailers, cancellation (RST_STREAM), deadlines (grpc-timeout), flow control — is
passed through untouched, so the client sees exactly what Sail sent.

A connection is bound to the Sail server of its first admitted call. PySpark shares one connection
between sessions of a process when the token travels as plain metadata, so a call for another
server makes the gateway send GOAWAY just below that call: gRPC retries the calls the gateway did not
take on a new connection, transparently, and the calls already running finish where they are. A
stopping gateway sends GOAWAY the same way (`drain`), so clients take new calls elsewhere (to the
gateway that replaces it) while the running ones finish.

One answer is rewritten: Sail's "operation not found" to a ReattachExecute, which Spark clients
only act on when it reads `INVALID_HANDLE.OPERATION_NOT_FOUND` (`reattach.py`). To rewrite a header
block without decoding all of Sail's, the gateway asks Sail not to use the HPACK dynamic table
towards the client (SETTINGS_HEADER_TABLE_SIZE 0 in the client's SETTINGS it passes on): every block
Sail sends can then be read, and replaced, on its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from hpack import Decoder, Encoder, HPACKError

from sailplane.gateway.access import Holder
from sailplane.gateway.http2 import (
    ACK,
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADERS,
    PREFACE,
    RST_STREAM,
    SETTINGS,
    SETTINGS_HEADER_TABLE_SIZE,
    WINDOW_UPDATE,
    Action,
    FrameScanner,
    frame,
    goaway,
    grpc_status_block,
    header_block_fragment,
    headers_frames,
    settings_values,
    window_update,
    with_setting,
)
from sailplane.gateway.reattach import METHOD as REATTACH
from sailplane.gateway.reattach import translate as translate_reattach_end
from sailplane.gateway.traffic import Traffic

log = logging.getLogger(__name__)

Headers = list[tuple[bytes, bytes]]
_REFUSED_MEMORY = 1024  # streams answered by the gateway whose late frames are still dropped


class Refusal(Exception):
    """A call the gateway answers itself with this gRPC status instead of relaying it."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class Call:
    """An authenticated call: whose it is, and the headers to send on."""

    session_id: str
    method: str
    claims: dict[str, object]
    forward: Headers
    holder: Holder | None = None  # the token holder's cached access answer, when the gateway checks holders
    span: Any = None  # its OpenTelemetry span while relayed, when the gateway traces calls


class Admission(Protocol):
    """What a connection asks its gateway, per call. All but `resolve` answer from memory."""

    traffic: Traffic

    def check_call(self, headers: Headers) -> Call: ...
    def resolve_now(self, call: Call) -> str | None: ...
    def resolve(self, call: Call) -> Awaitable[str]: ...
    def call_started(self, call: Call) -> None: ...
    def call_ended(self, call: Call) -> None: ...
    def connection_opened(self, conn: ClientConnection) -> None: ...
    def connection_closed(self, conn: ClientConnection) -> None: ...


def split_target(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    return host.strip("[]"), int(port)


class ClientConnection(asyncio.Protocol):
    """The client's side; owns the Sail side (`_SailSide`) once the first call is admitted."""

    def __init__(self, admission: Admission):
        self._gw = admission
        self._transport: asyncio.Transport | None = None
        self._preface_left = len(PREFACE)
        self._from_client = FrameScanner(self._client_header, self._client_frame)
        self._decoder, self._encoder = Decoder(), Encoder()
        self._block: bytearray | None = None  # a header block still waiting for CONTINUATION frames
        self._block_stream = self._block_flags = 0
        # The Sail side
        self.target: str | None = None
        self._sail: asyncio.Transport | None = None
        self._to_sail: list[bytes | memoryview] = []  # frames waiting for the Sail connection
        self._from_sail = FrameScanner(self._sail_header, self._sail_frame)
        # Streams
        self._last_stream = 0
        self._max_routed = 0
        self._open: dict[int, Call] = {}  # relayed streams → their calls
        # Streams not yet sent to Sail, in stream order, with the client's frames for them meanwhile: those
        # awaiting an async admission, and admitted ones (`_admitted`) queued behind a lower one, because
        # HTTP/2 streams must be opened in increasing order.
        self._held: dict[int, list[bytes | tuple[Headers, bool]]] = {}
        self._admitted: dict[int, tuple[Call, str, bool]] = {}
        self._refused: dict[int, None] = {}  # answered or dropped by us: the client's later frames are dropped
        self._reattach: set[int] = set()  # relayed ReattachExecute calls: Sail's last header block is read
        self._sail_block: tuple[int, int, bytearray] | None = None  # such a block awaiting CONTINUATION frames
        self._goaway_from: int | None = None  # this stream and later ones are left for a new connection
        # gRPC clients send no call before the server's SETTINGS, and Sail is only chosen by the first
        # call: the gateway speaks first (protocol defaults) and acknowledges the client's SETTINGS
        # until Sail is connected; Sail's own acknowledgements of those are then dropped.
        self._own_settings_unacked = 0
        self._sail_acks_to_drop = 0
        self._inject: list[bytes] = []  # our frames for the client, waiting for a frame boundary
        self._read_blocks: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = False

    # -- asyncio.Protocol (client side) ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._gw.connection_opened(self)
        self._own_settings_unacked += 1
        transport.write(frame(SETTINGS, 0, 0))  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self._gw.traffic.bytes_from_clients += len(data)
        if self._preface_left:
            head, data = data[: self._preface_left], data[self._preface_left :]
            offset = len(PREFACE) - self._preface_left
            if head != PREFACE[offset : offset + len(head)]:
                log.debug("not an HTTP/2 client; closing")
                self.close()
                return
            self._preface_left -= len(head)
            self._to_sail_send([head])
            if not data:
                return
        try:
            out = self._from_client.feed(data)
        except HPACKError:
            log.warning("undecodable request headers; closing the connection")
            self.close()
            return
        if out:
            self._to_sail_send(out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._shutdown()

    def pause_writing(self) -> None:  # the client reads slower than Sail answers
        if self._sail is not None:
            self._sail.pause_reading()

    def resume_writing(self) -> None:
        if self._sail is not None:
            self._sail.resume_reading()

    def close(self) -> None:
        """Close both sides; calls still open end with UNAVAILABLE on the client."""
        if self._transport is not None:
            self._transport.close()
        self._shutdown()

    @property
    def busy(self) -> bool:
        return bool(self._open or self._held)

    # -- client → Sail ----------------------------------------------------------------------------

    def _client_header(self, ftype: int, flags: int, stream: int, length: int) -> Action:
        if ftype in (HEADERS, CONTINUATION):
            return Action.COLLECT
        if ftype == SETTINGS:
            if flags & ACK:
                if self._own_settings_unacked:
                    self._own_settings_unacked -= 1
                    return Action.DROP
                return Action.PASS
            return Action.COLLECT  # passed on without the dynamic table (_client_frame)
        if not stream or ftype not in (DATA, RST_STREAM, WINDOW_UPDATE):
            return Action.PASS
        if stream in self._held:
            return Action.COLLECT  # kept with its stream until the call is admitted or refused
        if self._is_refused(stream):
            if ftype == DATA and length:
                self._refund(length)
            if ftype == RST_STREAM or flags & END_STREAM:
                self._refused.pop(stream, None)
            return Action.DROP
        if ftype == RST_STREAM:
            self._end(stream)
        return Action.PASS

    def _client_frame(self, ftype: int, flags: int, stream: int, payload: bytes) -> bytes | None:
        if ftype == SETTINGS:
            if self._sail is None:
                self._sail_acks_to_drop += 1
                self._write_client(frame(SETTINGS, ACK, 0))
            # Sail then encodes every header block on its own, so the gateway can read (and replace) any of them.
            return frame(SETTINGS, flags, 0, with_setting(payload, SETTINGS_HEADER_TABLE_SIZE, 0))
        if ftype == HEADERS:
            fragment = header_block_fragment(flags, payload)
            if flags & END_HEADERS:
                return self._header_block(stream, flags, fragment)
            self._block, self._block_stream, self._block_flags = bytearray(fragment), stream, flags
            return None
        if ftype == CONTINUATION:
            if self._block is None or stream != self._block_stream:
                raise HPACKError("CONTINUATION without HEADERS")
            self._block += payload
            if not flags & END_HEADERS:
                return None
            block, self._block = bytes(self._block), None
            return self._header_block(stream, self._block_flags, block)
        held = self._held[stream]
        if ftype == RST_STREAM:  # the client gave up on a call still being admitted
            self._held.pop(stream)
            self._admitted.pop(stream, None)
            self._refund(_held_data(held))
            self._refused[stream] = None
            # Not now: frames encoded earlier in this read (HPACK state) must reach Sail before released ones.
            asyncio.get_running_loop().call_soon(self._release_held)
        else:
            held.append(frame(ftype, flags, stream, payload))
        return None

    def _header_block(self, stream: int, flags: int, block: bytes) -> bytes | None:
        """A complete request header block: decoded always (the HPACK state is shared), then the call is
        admitted, held for an async admission, refused, or left for another connection."""
        headers: Headers = list(self._decoder.decode(block, raw=True))  # type: ignore[arg-type]
        end_stream = bool(flags & END_STREAM)
        if stream in self._open:  # trailers from the client: allowed by HTTP/2, unused by gRPC
            return self._encode(stream, headers, end_stream)
        if stream in self._held:
            self._held[stream].append((headers, end_stream))
            return None
        if stream <= self._last_stream or self._is_refused(stream):
            if end_stream:
                self._refused.pop(stream, None)
            return None
        self._last_stream = stream
        try:
            call = self._gw.check_call(headers)
            target = self._gw.resolve_now(call)
        except Refusal as refusal:
            self._refuse(stream, refusal)
            return None
        if target is None or self._held:
            self._held[stream] = []
            if target is None:
                self._spawn(self._admit_later(stream, call, end_stream))
            else:  # admitted, but a lower stream is still being admitted: it goes first
                self._admitted[stream] = (call, target, end_stream)
            return None
        return self._route(stream, call, target, end_stream)

    async def _admit_later(self, stream: int, call: Call, end_stream: bool) -> None:
        try:
            target = await self._gw.resolve(call)
        except Refusal as refusal:
            held = self._held.pop(stream, None)
            if held is not None:
                self._refund(_held_data(held))
                self._refuse(stream, refusal)
                self._release_held()
            return
        if stream not in self._held or self.closed:
            return  # reset by the client, or left for another connection, meanwhile
        self._admitted[stream] = (call, target, end_stream)
        self._release_held()

    def _release_held(self) -> None:
        """Send the admitted streams at the front of the queue to Sail, in stream order."""
        while self._held and not self.closed:
            stream = next(iter(self._held))
            admitted = self._admitted.pop(stream, None)
            if admitted is None:
                return  # the lowest one is still being admitted
            held = self._held.pop(stream)
            first = self._route(stream, *admitted)
            if first is None:
                self._refund(_held_data(held))
                continue
            pieces: list[bytes | memoryview] = [first]
            for item in held:
                pieces.append(item if isinstance(item, bytes) else self._encode(stream, *item))
            self._to_sail_send(pieces)

    def _route(self, stream: int, call: Call, target: str, end_stream: bool) -> bytes | None:
        """Send an admitted call to Sail (returns its HEADERS frames) unless this connection is Sail's elsewhere."""
        if self.target is None:
            self.target = target
            self._spawn(self._connect(target))
        elif target != self.target:
            self._move_off(stream)
            return None
        self._open[stream] = call
        if call.method == REATTACH:
            self._reattach.add(stream)
        self._max_routed = max(self._max_routed, stream)
        self._gw.call_started(call)
        return self._encode(stream, call.forward, end_stream)

    def _encode(self, stream: int, headers: Headers, end_stream: bool) -> bytes:
        return headers_frames(stream, self._encoder.encode(headers, huffman=False), end_stream=end_stream)

    def _move_off(self, stream: int) -> None:
        """A call for another Sail server: GOAWAY below it, so gRPC retries it (and later calls) elsewhere."""
        if self._goaway_from is not None or self._max_routed > stream:
            # Calls above it already run here: GOAWAY cannot leave this one out. The client retries UNAVAILABLE.
            self._refuse(stream, Refusal(grpc.StatusCode.UNAVAILABLE,
                                         "this connection carries another session's calls; retry"))
            return
        self._goaway_from = stream
        self._refused[stream] = None
        self._inject_frame(goaway(max(0, stream - 2)))
        for later in [s for s in self._held if s > stream]:
            self._refund(_held_data(self._held.pop(later)))
            self._admitted.pop(later, None)
            self._refused[later] = None
        self._close_if_drained()

    def drain(self) -> None:
        """The gateway is stopping: GOAWAY above the last call seen (the client sends later ones to a new
        connection), running calls finish; the connection closes once they have."""
        if self.closed:
            return
        if self._goaway_from is None:
            self._goaway_from = self._last_stream + 2  # client streams are odd: the next one it would open
            self._inject_frame(goaway(self._last_stream))
        self._close_if_drained()

    def _is_refused(self, stream: int) -> bool:
        return stream in self._refused or (self._goaway_from is not None and stream >= self._goaway_from)

    def _refuse(self, stream: int, refusal: Refusal) -> None:
        """Answer a call ourselves: a trailers-only response with the refusal's status."""
        refused = self._gw.traffic.refused
        refused[refusal.code.name] = refused.get(refusal.code.name, 0) + 1
        self._refused[stream] = None
        if len(self._refused) > _REFUSED_MEMORY:
            self._refused.pop(next(iter(self._refused)))
        block = grpc_status_block(refusal.code.value[0], refusal.message)
        self._inject_frame(headers_frames(stream, block, end_stream=True))

    def _refund(self, length: int) -> None:
        """Give back connection flow-control credit for request bytes Sail will never see."""
        if length:
            self._inject_frame(window_update(0, length))

    def _to_sail_send(self, pieces: Sequence[bytes | memoryview]) -> None:
        if self.closed:
            return
        if self._sail is not None:
            self._sail.writelines(pieces)
        else:
            self._to_sail.extend(pieces)

    # -- frames of our own to the client ----------------------------------------------------------

    def _inject_frame(self, data: bytes) -> None:
        """Send a frame of ours to the client, between two of Sail's."""
        if self._from_sail.at_boundary:
            self._write_client(data)
        else:
            self._inject.append(data)

    def _write_client(self, data: bytes) -> None:
        if self._transport is not None and not self.closed:
            self._transport.write(data)

    # -- Sail → client ----------------------------------------------------------------------------

    async def _connect(self, target: str) -> None:
        host, port = split_target(target)
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_connection(lambda: _SailSide(self), host, port)
        except OSError as exc:
            log.warning("Sail at %s cannot be reached: %s", target, exc)
            self.close()  # the client sees UNAVAILABLE and reconnects; the session is then resolved again
            return
        if self.closed:
            transport.close()
            return
        self._sail = transport  # type: ignore[assignment]
        pending, self._to_sail = self._to_sail, []
        transport.writelines(pending)  # type: ignore[attr-defined]

    def _sail_header(self, ftype: int, flags: int, stream: int, length: int) -> Action:
        if ftype == SETTINGS:
            if not flags & ACK:
                return Action.COLLECT
            if self._sail_acks_to_drop:
                self._sail_acks_to_drop -= 1
                return Action.DROP
            return Action.PASS
        if ftype == HEADERS and flags & END_STREAM and stream in self._reattach or \
                ftype == CONTINUATION and self._sail_block is not None:
            return Action.COLLECT  # the end of a ReattachExecute: _sail_frame reads it
        if ftype in (DATA, HEADERS) and flags & END_STREAM or ftype == RST_STREAM:
            self._end(stream)
        elif ftype == GOAWAY and self._goaway_from is not None:
            return Action.DROP  # ours went first; a GOAWAY may not raise the last stream ID
        return Action.PASS

    def _sail_frame(self, ftype: int, flags: int, stream: int, payload: bytes) -> bytes | None:
        """Sail's SETTINGS: its header table size bounds the client's encoder, so our decoder follows it.
        The last header block of a ReattachExecute: passed on, or rewritten (`reattach.py`)."""
        if ftype == HEADERS:
            fragment = header_block_fragment(flags, payload)
            if not flags & END_HEADERS:
                self._sail_block = (stream, flags, bytearray(fragment))
                return None
            return self._reattach_end(stream, fragment)
        if ftype == CONTINUATION:
            assert self._sail_block is not None
            block_stream, _, block = self._sail_block
            block += payload
            if not flags & END_HEADERS:
                return None
            self._sail_block = None
            return self._reattach_end(block_stream, bytes(block))
        size = settings_values(payload).get(SETTINGS_HEADER_TABLE_SIZE)
        if size is not None:
            self._decoder.max_allowed_table_size = size
            if size < self._encoder.header_table_size:
                self._encoder.header_table_size = size
        return frame(ftype, flags, stream, payload)

    def _reattach_end(self, stream: int, block: bytes) -> bytes:
        replaced = translate_reattach_end(block)
        if replaced is not None:
            log.info("ReattachExecute for an operation Sail never saw: answered %s so the client sends it again",
                     "INVALID_HANDLE.OPERATION_NOT_FOUND")
        self._end(stream)
        return headers_frames(stream, block if replaced is None else replaced, end_stream=True)

    def sail_data(self, data: bytes) -> None:
        if self.closed:
            return
        self._gw.traffic.bytes_from_sail += len(data)
        out = self._from_sail.feed(data)
        if out and self._transport is not None:
            self._transport.writelines(out)
        if self._inject and self._from_sail.at_boundary:
            pending, self._inject = self._inject, []
            self._write_client(b"".join(pending))

    def sail_lost(self) -> None:
        if not self.closed:
            log.info("Sail at %s closed the connection", self.target)
            self.close()

    def block_client_reads(self, reason: str, blocked: bool) -> None:
        if blocked:
            self._read_blocks.add(reason)
        else:
            self._read_blocks.discard(reason)
        if self._transport is not None and not self.closed:
            if self._read_blocks:
                self._transport.pause_reading()
            else:
                self._transport.resume_reading()

    # -- bookkeeping ------------------------------------------------------------------------------

    def _end(self, stream: int) -> None:
        self._reattach.discard(stream)
        call = self._open.pop(stream, None)
        if call is not None:
            self._gw.call_ended(call)
            if self._goaway_from is not None and not self.closed:
                # Not now: the frame that ended the call is still on its way to the client.
                asyncio.get_running_loop().call_soon(self._close_if_drained)

    def carries(self, holders: set[Holder]) -> bool:
        """Whether a running call on this connection belongs to one of these token holders."""
        return any(call.holder in holders for call in self._open.values())

    def _close_if_drained(self) -> None:
        """After a GOAWAY the client moves on; once our calls are done the connection has no use."""
        if self._goaway_from is not None and not self._open and not self._held:
            self.close()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("gateway connection task failed", exc_info=task.exception())
            self.close()

    def _shutdown(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._sail is not None:
            self._sail.close()
        for task in self._tasks:
            task.cancel()
        self._held.clear()
        self._admitted.clear()
        for stream in list(self._open):
            self._end(stream)
        self._gw.connection_closed(self)


def _held_data(held: list[bytes | tuple[Headers, bool]]) -> int:
    """Flow-controlled bytes in the held frames of a stream (DATA payloads)."""
    return sum(len(f) - 9 for f in held if isinstance(f, bytes) and f[3] == DATA)


class _SailSide(asyncio.Protocol):
    def __init__(self, conn: ClientConnection):
        self._conn = conn

    def data_received(self, data: bytes) -> None:
        self._conn.sail_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._conn.sail_lost()

    def pause_writing(self) -> None:  # Sail reads slower than the client sends
        self._conn.block_client_reads("sail-busy", True)

    def resume_writing(self) -> None:
        self._conn.block_client_reads("sail-busy", False)

