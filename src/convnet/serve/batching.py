"""Many requests, one forward pass: a bounded queue that a single worker drains in batches.

Why: on a 2-core CPU a forward pass of 64 images costs little more than one of 1, so
requests that arrive together are answered together (as Triton and BentoML do). By default
nothing waits on purpose (``max_wait_ms=0``): a lone request runs at once, and the requests
that arrive while a batch runs form the next one. The queue
is bounded so that overload is refused at once (`Overloaded`, a 503 with Retry-After)
instead of piling up; a request that waits past its deadline is dropped (`TimeoutError`,
a 504) and its image is skipped if it was not computed yet.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch


class Overloaded(Exception):
    """The queue is full: try again shortly."""


class Batcher:
    """Collects images for ``predict`` (uint8 (N, C, H, W) -> one answer per image, e.g.
    `Predictor.rows`: its probabilities and "unknown" score)."""

    def __init__(self, predict: Callable[[torch.Tensor], Sequence[Any]], max_batch: int = 64,
                 max_wait_ms: float = 0.0, max_queue: int = 128, timeout_s: float = 10.0):
        self.predict, self.max_batch, self.max_wait = predict, max_batch, max_wait_ms / 1000
        self.max_queue, self.timeout = max_queue, timeout_s
        self.queue: asyncio.Queue | None = None
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="convnet-forward")
        self.task: asyncio.Task | None = None
        self.batch_sizes: list[int] = []  # for /metrics, emptied as it is read
        self.pending = 0

    def start(self) -> None:
        self.queue = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        """Finish what is queued, then stop the worker (graceful shutdown)."""
        deadline = time.monotonic() + self.timeout
        while self.pending and self.task is not None and not self.task.done() \
                and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self.task is not None:
            self.task.cancel()
        self.executor.shutdown(wait=True)

    @property
    def depth(self) -> int:
        return self.pending

    async def submit(self, image: torch.Tensor) -> Any:
        """``predict``'s answer for one uint8 image (C, H, W).

        Raises:
            Overloaded: when the queue is full. TimeoutError: past the deadline.
        """
        assert self.queue is not None, "start() the batcher first"
        if self.pending >= self.max_queue:
            raise Overloaded
        future = asyncio.get_running_loop().create_future()
        self.pending += 1
        self.queue.put_nowait((image, future, time.monotonic() + self.timeout))
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout)
        finally:
            if not future.done():
                future.cancel()  # the worker skips it

    async def _gather(self) -> list[tuple[torch.Tensor, asyncio.Future, float]]:
        """The first waiting image, everything queued behind it (what arrived while the last
        batch ran), and, with ``max_wait``, what arrives within that much longer."""
        items = [await self.queue.get()]
        deadline = time.monotonic() + self.max_wait
        while len(items) < self.max_batch:
            if not self.queue.empty():
                items.append(self.queue.get_nowait())
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                items.append(await asyncio.wait_for(self.queue.get(), left))
            except TimeoutError:
                break
        return items

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = await self._gather()
            self.pending -= len(items)
            live = [(image, future) for image, future, due in items
                    if not future.done() and time.monotonic() < due]
            if not live:
                continue
            batch = torch.stack([image for image, _ in live])  # (N, C, H, W) uint8
            self.batch_sizes.append(len(live))
            try:
                rows = await loop.run_in_executor(self.executor, self.predict, batch)
            except Exception as error:  # the forward pass failed: every waiter hears it
                for _, future in live:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), row in zip(live, rows):
                if not future.done():
                    future.set_result(row)
