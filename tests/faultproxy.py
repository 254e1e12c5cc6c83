"""A TCP proxy between a client and MongoDB that delays, cuts, or cuts after forwarding a request.

`cut_after_forward` is the nasty one: the server gets and applies the write, the client never
sees the reply, so a naive retry applies it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field


@dataclass
class FaultPlan:
    delay: float = 0.0
    cut_probability: float = 0.0  # close before forwarding a request
    cut_after_forward_probability: float = 0.0  # forward the request, then close before the reply
    refuse: bool = False  # drop new and existing connections at once
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
        upstream = asyncio.create_task(self._pump_requests(client_r, server_w, client_w, cut))
        downstream = asyncio.create_task(self._pump_replies(server_r, client_w, cut))
        await asyncio.wait({upstream, downstream}, return_when=asyncio.FIRST_COMPLETED)
        for task in (upstream, downstream):
            task.cancel()
        for writer in (client_w, server_w):
            writer.close()
            self._writers.discard(writer)

    async def _pump_requests(self, reader, server_w, client_w, cut: asyncio.Event) -> None:
        while chunk := await reader.read(65536):
            self.requests += 1
            plan = self.plan
            if plan.refuse:
                return
            if plan.delay:
                await asyncio.sleep(plan.delay)
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

    async def _pump_replies(self, reader, client_w, cut: asyncio.Event) -> None:
        while chunk := await reader.read(65536):
            if cut.is_set():
                return
            client_w.write(chunk)
            await client_w.drain()
