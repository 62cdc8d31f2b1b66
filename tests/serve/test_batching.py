"""The batcher: requests that arrive together share one forward pass, a full queue is
refused at once, a request past its deadline times out, and a failed pass reaches every
waiter."""

from __future__ import annotations

import asyncio
import threading

import pytest
import torch

from convnet.serve.batching import Batcher, Overloaded


def _images(count: int) -> list[torch.Tensor]:
    return [torch.full((1, 2, 2), n, dtype=torch.uint8) for n in range(count)]


def test_waiting_requests_share_a_forward_pass_and_get_their_own_rows():
    calls = []

    def predict(batch):  # (N, 1, 2, 2) -> (N, 2): the pixel value, to trace each row
        calls.append(len(batch))
        value = batch.flatten(1)[:, 0].float()
        return torch.stack([value, -value], 1)

    async def scenario():
        batcher = Batcher(predict, max_batch=8)
        batcher.start()
        rows = await asyncio.gather(*(batcher.submit(image) for image in _images(20)))
        await batcher.stop()
        return rows
    rows = asyncio.run(scenario())
    assert [float(row[0]) for row in rows] == list(range(20))
    assert max(calls) > 1 and max(calls) <= 8 and sum(calls) == 20


def test_a_full_queue_is_refused_at_once_and_a_slow_pass_times_out():
    release = threading.Event()

    def slow(batch):
        release.wait(5)
        return torch.zeros(len(batch), 2)

    async def scenario():
        batcher = Batcher(slow, max_batch=1, max_queue=2, timeout_s=0.3)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(_images(1)[0]))
        await asyncio.sleep(0.05)  # the worker holds the first in the slow pass
        waiting = [asyncio.ensure_future(batcher.submit(image)) for image in _images(2)]
        await asyncio.sleep(0.05)
        with pytest.raises(Overloaded):
            await batcher.submit(_images(1)[0])
        results = await asyncio.gather(first, *waiting, return_exceptions=True)
        release.set()
        await batcher.stop()
        return results
    results = asyncio.run(scenario())
    assert all(isinstance(result, TimeoutError) for result in results)


def test_a_failed_forward_pass_reaches_every_waiter():
    def broken(batch):
        raise RuntimeError("no")

    async def scenario():
        batcher = Batcher(broken, max_batch=4)
        batcher.start()
        results = await asyncio.gather(*(batcher.submit(image) for image in _images(3)),
                                       return_exceptions=True)
        await batcher.stop()
        return results
    assert all(isinstance(result, RuntimeError) for result in asyncio.run(scenario()))
