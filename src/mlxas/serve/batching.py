"""Micro-batching of single-spectrum requests in ``mlxas serve``.

One spectrum through the prediction pipeline costs several times its share of a batch:
the background operator, the model's matrix products and the OOD distances are all
vectorised over spectra.  Requests that arrive while a batch is being processed therefore
wait for it to finish and then go together as the next batch.  Nothing waits on a timer:
a request that finds the model idle is processed at once, alone, so a lightly loaded
server answers as fast as before and a busy one answers more requests per second.

Each spectrum is still processed as if it had come alone: the batch runs with one E0 per
spectrum (``e0 = "file"``), never the shared E0 of a series, so a request's answer does
not depend on which other requests shared its batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["MicroBatcher"]

#: Event-loop turns a batch waits for requests already on their way (no timer).
GATHER_TURNS = 4


class MicroBatcher:
    """Collects items submitted from the event loop and runs them in batches, one batch at
    a time, on the event loop itself.

    The batch runs on the loop, not in a worker thread: the requests that arrive meanwhile
    wait in the socket buffers and are read together afterwards, which is the batching
    wanted; a worker thread would fight the loop for the GIL and, measured, made every
    spectrum cost about three times its CPU time.

    Parameters
    ----------
    run:
        Function from a list of items to a list of results of the same length and order
        (here: ``Predictor.predict_spectra`` under the model's lock).
    max_batch:
        Largest batch handed to ``run``; more waiting items go in the following batches.
    busy:
        True while ``run`` would have to wait (the model's lock is held elsewhere); such
        a batch runs in a worker thread instead of on the loop.
    """

    def __init__(
        self,
        run: Callable[[list], Sequence[Any]],
        max_batch: int = 256,
        busy: Callable[[], bool] | None = None,
    ):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        self._run = run
        self._busy = busy
        self.max_batch = max_batch
        self._waiting: list[tuple[Any, asyncio.Future]] = []
        self._draining = False
        #: Number of batches run and of items in them (for /health and the benchmark).
        self.batches = 0
        self.items = 0

    async def submit(self, item: Any) -> Any:
        """The result of ``run`` for ``item``, computed in a batch with whatever else was
        waiting; an exception of ``run`` is raised in every request of its batch."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            await self._gather()
            while self._waiting:
                batch = self._waiting[: self.max_batch]
                del self._waiting[: self.max_batch]
                items = [item for item, _ in batch]
                try:
                    if self._busy is not None and self._busy():
                        # The model is held by a request served in a worker thread (a
                        # series, a file): wait for it there, so that the event loop
                        # goes on reading requests and answering /health meanwhile.
                        results = await asyncio.to_thread(self._run, items)
                    else:
                        results = self._run(items)
                    if len(results) != len(batch):
                        raise RuntimeError(
                            f"batch of {len(batch)} items gave {len(results)} results"
                        )
                except Exception as err:  # handed to the requests, which answer 5xx
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(err)
                    continue
                self.batches += 1
                self.items += len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():  # a client that went away cancelled its future
                        future.set_result(result)
                await self._gather()
        finally:
            self._draining = False

    async def _gather(self) -> None:
        """A few turns of the event loop: the requests read from the sockets meanwhile
        (parsed, validated, each a few loop callbacks away from ``submit``) join the next
        batch instead of starting one of their own."""
        for _ in range(GATHER_TURNS):
            await asyncio.sleep(0)
