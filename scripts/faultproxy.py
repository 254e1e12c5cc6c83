"""A TCP proxy between a client and MongoDB that delays, cuts, cuts after forwarding a request,
holds a request and delivers it late, or answers a write with a write-concern error.

`cut_after_forward` is the nasty one: the server gets and applies the write, the client never
sees the reply, so a naive retry applies it twice. `hold_next` is nastier: the client sees a cut
connection at once, moves on (retries, newer writes), and the held request reaches the server
seconds later, like a request the bot abandoned that was still on the wire.
`write_concern_error_next` forwards the next write and, in place of the server's reply, answers
`ok: 1` with a `writeConcernError` (what a replica set answers on failover or replication timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
from dataclasses import dataclass, field

import bson

OP_MSG = 2013


@dataclass
class FaultPlan:
    delay: float = 0.0
    cut_probability: float = 0.0  # close before forwarding a request
    cut_after_forward_probability: float = 0.0  # forward the request, then close before the reply
    refuse: bool = False  # drop new and existing connections at once
    hold_next: float = 0.0  # the next request: cut the client, deliver it this many seconds late
    write_concern_error_next: int = 0  # this many next writes: answered with a writeConcernError
    write_concern_error_applies: bool = True  # False: the write is not forwarded (as if rolled back)
    seed: int = 1
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, plan: FaultPlan | None = None) -> None:
        self.target = (target_host, target_port)
        self.plan = plan or FaultPlan()
        self.faults = 0
        self.cuts_after_forward = 0
        self.requests = 0
        self.held = 0
        self.delivered_late = 0
        self.write_concern_errors = 0
        self._late: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for task in list(self._late):
            task.cancel()
        if self._server is not None:
            self._server.close()
            self.cut_all()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def cut_all(self) -> None:
        for writer in list(self._writers):
            writer.close()

    def heal(self) -> None:
        self.plan = FaultPlan()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.plan.refuse:
            client_w.close()
            return
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        self._writers.update({client_w, server_w})
        cut = asyncio.Event()
        drop = [0]  # server replies to drop (their request was answered by the proxy)
        upstream = asyncio.create_task(self._pump_requests(client_r, server_w, client_w, cut, drop))
        downstream = asyncio.create_task(self._pump_replies(server_r, client_w, cut, drop))
        await asyncio.wait({upstream, downstream}, return_when=asyncio.FIRST_COMPLETED)
        for task in (upstream, downstream):
            task.cancel()
        for writer in (client_w, server_w):
            writer.close()
            self._writers.discard(writer)

    async def _pump_requests(self, reader, server_w, client_w, cut: asyncio.Event, drop: list[int]) -> None:
        while chunk := await reader.read(65536):
            self.requests += 1
            plan = self.plan
            if plan.refuse:
                return
            if plan.delay:
                await asyncio.sleep(plan.delay)
            if plan.hold_next and _is_write(chunk):
                delay, plan.hold_next = plan.hold_next, 0.0
                self.held += 1
                task = asyncio.create_task(self._deliver_late(chunk, delay))
                self._late.add(task)
                task.add_done_callback(self._late.discard)
                return  # the client's connection closes now: it sees a network error
            if plan.write_concern_error_next and _is_write(chunk):
                plan.write_concern_error_next -= 1
                await self._answer_write_concern_error(chunk, server_w, client_w, drop)
                continue
            roll = plan.rng.random()
            if roll < plan.cut_probability:
                self.faults += 1
                return
            server_w.write(chunk)
            await server_w.drain()
            if roll < plan.cut_probability + plan.cut_after_forward_probability:
                self.faults += 1
                self.cuts_after_forward += 1
                cut.set()
                await asyncio.sleep(0.05)  # let the server apply it; its reply is dropped
                return

    async def _deliver_late(self, chunk: bytes, delay: float) -> None:
        await asyncio.sleep(delay)
        reader, writer = await asyncio.open_connection(*self.target)
        try:
            writer.write(chunk)
            await writer.drain()
            await reader.read(65536)  # the server's answer (applied, or refused by a guard)
            self.delivered_late += 1
        finally:
            writer.close()

    async def _answer_write_concern_error(self, chunk: bytes, server_w, client_w, drop: list[int]) -> None:
        """Forward the write (the server applies it), drop the server's reply, answer the client as a
        replica set does when the write concern times out."""
        if self.plan.write_concern_error_applies:
            drop[0] += 1
            server_w.write(chunk)
            await server_w.drain()
            await asyncio.sleep(0.05)
        request_id = struct.unpack_from("<i", chunk, 4)[0]
        body = bson.encode({"ok": 1.0, "n": 1, "nModified": 1, "writeConcernError": {
            "code": 64, "codeName": "WriteConcernFailed",
            "errmsg": "waiting for replication timed out", "errInfo": {"wtimeout": True}}})
        payload = struct.pack("<I", 0) + b"\x00" + body
        header = struct.pack("<iiii", 16 + len(payload), 0, request_id, OP_MSG)
        self.write_concern_errors += 1
        client_w.write(header + payload)
        await client_w.drain()

    async def _pump_replies(self, reader, client_w, cut: asyncio.Event, drop: list[int]) -> None:
        while chunk := await reader.read(65536):
            if cut.is_set():
                return
            if drop[0]:
                drop[0] -= 1
                continue
            client_w.write(chunk)
            await client_w.drain()


def _is_write(chunk: bytes) -> bool:
    """An OP_MSG whose command is an insert, update or delete (not a hello, ping or read)."""
    if len(chunk) < 21 or struct.unpack_from("<i", chunk, 12)[0] != OP_MSG or chunk[20] != 0:
        return False
    command = chunk[21 + 4:21 + 4 + 16]  # the body's first element: type byte, then its name
    return command[1:].split(b"\x00", 1)[0] in {b"insert", b"update", b"delete"}
