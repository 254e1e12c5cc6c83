"""Small async helpers shared by the emulator modules."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


class Waiters:
    """Futures resolved when a predicate over the emulator's state becomes truthy.

    Everything that changes state calls :meth:`poke`; a waiter whose predicate now returns a
    truthy value gets that value as its result.
    """

    def __init__(self) -> None:
        self._waiters: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []

    async def wait_for(self, predicate: Callable[[], T | None], timeout: float, what: str) -> T:
        result = predicate()
        if result:
            return result
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        entry = (predicate, future)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}") from None
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def poke(self) -> None:
        for predicate, future in list(self._waiters):
            if future.done():
                continue
            try:
                result = predicate()
            except Exception as exc:
                future.set_exception(exc)
            else:
                if result:
                    future.set_result(result)
