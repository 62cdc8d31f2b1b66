"""Training under `torchrun`: which process this is, and the few collectives the run needs.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; `join` starts the process group from them
(NCCL on GPUs, gloo on CPU) and everything else asks `World` who it is. With no torchrun in
sight the world is one process and nothing here does anything, so the single-process path
is the same code. We write no launcher or collective of our own: torch.distributed is the
engine.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

TIMEOUT = timedelta(minutes=5)  # a rank that died makes the others fail, not hang forever
LEAVING = timedelta(seconds=60)  # what a finished rank waits for the others at the end


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def primary(self) -> bool:
        """The one process that writes files and prints progress."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


def world() -> World:
    """This process's place, from torchrun's environment (one process without it)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    return World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")),
                 int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def part(count: int, rank: int, ranks: int) -> range:
    """Rank ``rank``'s contiguous share of ``count`` items: the shares differ by at most
    one, cover every item once, and need no padding."""
    return range(rank * count // ranks, (rank + 1) * count // ranks)


def join(device: torch.device) -> World:
    """Start the process group once (a no-op for one process)."""
    here = world()
    if here.active and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=TIMEOUT, store=_attempt_store(here),
                                rank=here.rank, world_size=here.size)
        # a process that exits with the group alive aborts in gloo's threads ("terminate
        # called without an active exception"), which torchrun reports as a failure
        atexit.register(leave)
    return here


def _attempt_store(here: World) -> dist.Store:
    """The rendezvous store for this attempt of the workers. torchrun's agent keeps one
    store for every restart (``--max-restarts``), and the process group's keys carry no
    attempt: restarted workers would read the dead workers' gloo addresses and fail with
    "connection refused". A prefix per attempt keeps each attempt's keys apart."""
    # torchrun's agent hosts the store; in a launch without it, rank 0 does
    hosted = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True" and here.rank == 0
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]),
                          here.size, is_master=hosted, timeout=TIMEOUT, multi_tenant=True)
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    return dist.PrefixStore(f"convnet/attempt_{attempt}", store)


def lost_peer(error: BaseException) -> str | None:
    """Under torchrun, why a collective failed when another process stopped (gloo's or
    NCCL's own words, shortened); None for any other error."""
    text = str(error)
    if not world().active or not (isinstance(error, dist.DistError) or "gloo" in text
                                  or "NCCL" in text):
        return None
    first = text.splitlines()[0] if text else type(error).__name__
    return first.rsplit("] ", 1)[-1].split(". ")[0]


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def broadcast(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (a picklable Python object made by this code,
    never by a user's file)."""
    if not dist.is_initialized():
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def gather(value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order, on every rank (objects this code made)."""
    if not dist.is_initialized():
        return [value]
    found: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(found, value)
    return found


def restarted() -> bool:
    """Whether torchrun restarted this worker after a failure (``--max-restarts``)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


def sum_all(tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise sum over ranks (in place; returned for chaining)."""
    if dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def leave_together(succeeded: bool) -> None:
    """A worker's end under torchrun: once it ``succeeded``, it waits (up to `LEAVING`) for
    every rank to finish too, then the process group is destroyed (a no-op without one).
    The caller then ends the process without the interpreter's teardown
    (`convnet.cli.process`). Now and then a two-rank run on this CPU that had finished
    and written its files ended with a rank aborted by gloo as it exited (SIGABRT,
    "terminate called without an active exception"), which torchrun reports as the
    job's failure: in 1 of 3 full test runs on 2026-12-07 and in some earlier ones, and
    in none of 55 runs of one test alone, so the cause is not pinned down."""
    if not dist.is_initialized():
        return
    if succeeded:
        try:  # a rank that failed never comes; torchrun reports it
            if dist.get_backend() == "gloo":
                dist.monitored_barrier(timeout=LEAVING)
            else:
                dist.barrier()
        except Exception:  # noqa: BLE001 - leaving anyway: the run is on disk or reported
            pass
    leave()
