"""Keeping torch's compiler front end out of a process that compiles nothing.

torch wraps some of `torch.optim.Optimizer`'s methods (adding parameter groups, zeroing
gradients, the state dicts) so that ``torch.compile`` never traces them, and the wrapper
imports the compiler (``torch._dynamo``) the first time one is called, to mark the method
for it: 1.0-1.5 s on two cores here, paid by the first optimizer a process makes. For a
run of the head alone, whose L-BFGS fits are the only optimizers, that import was a fifth
of a 5 s budget (bench/HISTORY.md, "The compiler's import"). The AdamW epochs import it
anyway: their step does so itself.

A step of torch's optimizers imports it too, whatever is marked. Every step convnet takes
(the speed probe's, the epochs', the new head's) goes through `step`, which calls the
optimizer's own update under ``no_grad`` as the wrapper would, without the import: a
plan that ends in the head alone never imports the compiler (1.9 s of a 23 s budget,
profiled), and a run that compiles nothing never does (1.2 s of a 6 s budget).

`defer` marks those methods as the wrapper would have, with the methods themselves, where
nothing has imported the compiler yet: the wrapper then calls them without the import.
The marks matter only to ``torch.compile``, so `restore` takes them away before anything
is compiled (`convnet.training.speed.maybe_compile`), and the compiler, once imported,
marks the methods properly. Only convnet's own processes defer (the ``train`` command, a
studio job's worker): a program that imports convnet keeps torch as it found it.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable

import torch

# the import, on two cores here: 1.0-1.5 s (bench/HISTORY.md, "The compiler's import"), 1.9 s
# in one profile of a plan's speed probe
SECONDS = 1.2
MARK = "__dynamo_disable"  # where torch's wrapper keeps a method's compiler-free version
_marked: list[Callable] = []  # the methods `defer` marked, for `restore`


def _wrapped_methods() -> list[Callable]:
    """The functions `torch.optim.Optimizer`'s compiler-excluding wrappers call (none
    where this torch wraps them otherwise: then nothing is deferred)."""
    wrap = getattr(getattr(torch, "_compile", None), "_disable_dynamo", None)
    if wrap is None:
        return []
    inner = wrap(lambda: None).__code__  # the wrapper's code, shared by every wrapper
    return [method.__wrapped__ for method in vars(torch.optim.Optimizer).values()
            if getattr(method, "__code__", None) is inner and hasattr(method, "__wrapped__")]


def defer() -> None:
    """Mark the optimizer's wrapped methods so that calling them imports no compiler
    (nothing, where it is imported already)."""
    if "torch._dynamo" in sys.modules or _marked:
        return
    for method in _wrapped_methods():
        if not hasattr(method, MARK):
            setattr(method, MARK, method)
            _marked.append(method)


def pending() -> bool:
    """Whether the next optimizer made would import the compiler: it is not imported yet,
    and not deferred."""
    return "torch._dynamo" not in sys.modules and not _marked


def unpaid() -> float:
    """Seconds of the compiler's import this process has still to pay, by the first
    optimizer or step of torch's it makes: nothing where it is imported or deferred."""
    return SECONDS if pending() else 0.0


def before_steps() -> None:
    """Import the compiler now, where the first optimizer step would have: the epochs that
    follow are timed without it. A time budget reads the first epoch's time to fit the
    rest: with the import in it (1.2 s in an epoch of 0.1 s), 24 planned epochs of 600
    small digits were cut to 1. Deferred, the steps import nothing, and neither does this."""
    if pending():
        importlib.import_module("torch._dynamo")


def restore() -> None:
    """Take `defer`'s marks away, so that the compiler marks the methods itself."""
    while _marked:
        method = _marked.pop()
        if getattr(method, MARK, None) is method:
            delattr(method, MARK)


def step(optimizer: torch.optim.Optimizer) -> None:
    """``optimizer.step()``; while the compiler's import is deferred, its update itself
    under ``no_grad``, as torch's wrapper runs it but without importing the compiler for
    the graph breaks that only the compiler reads. Where a step hook is registered, torch's
    own step runs, since only it calls the hooks."""
    # the cheap tests first: this runs at every training step, deferred or not
    deferred = _marked and "torch._dynamo" not in sys.modules
    update = inspect.unwrap(type(optimizer).step) if deferred else None
    if update is None or update is type(optimizer).step or \
            optimizer.defaults.get("differentiable") or _hooked(optimizer):
        optimizer.step()
        return
    with torch.no_grad():
        update(optimizer)
    if hasattr(optimizer.step, "_wrapped_by_lr_sched"):
        # what a learning-rate schedule's wrapper of ``step`` records, so that the
        # schedule knows its optimizer stepped first (else it warns on its first step)
        optimizer._opt_called = True  # type: ignore[attr-defined]


def _hooked(optimizer: torch.optim.Optimizer) -> bool:
    """Whether a step hook of this optimizer's, or of every optimizer's, is registered."""
    from torch.optim import optimizer as module

    hooks = (getattr(optimizer, "_optimizer_step_pre_hooks", None),
             getattr(optimizer, "_optimizer_step_post_hooks", None),
             getattr(module, "_global_optimizer_pre_hooks", None),
             getattr(module, "_global_optimizer_post_hooks", None))
    return any(hooks)
