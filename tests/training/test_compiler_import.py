"""The ``convnet`` command's optimizers import no compiler until something is compiled,
and then torch's own marks are back. In a fresh interpreter: the compiler is imported
once per process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from convnet.training import compiler_import


def _fresh(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_deferred_optimizers_fit_without_the_compiler_until_one_compiles():
    found = _fresh("""
        import json, sys, torch
        from torch import nn
        from convnet.training import compiler_import, speed

        compiler_import.defer()
        marked = not compiler_import.pending()
        # what the head's fit does: an L-BFGS with a closure that zeroes the gradients
        weight = torch.zeros(3, requires_grad=True)
        target = torch.tensor([1.0, -2.0, 0.5])
        optimizer = torch.optim.LBFGS([weight], max_iter=50, line_search_fn="strong_wolfe")
        def closure():
            optimizer.zero_grad()
            loss = ((weight - target) ** 2).sum()
            loss.backward()
            return loss
        optimizer.step(closure)
        optimizer.load_state_dict(optimizer.state_dict())
        fitted = weight.detach().tolist()
        before = "torch._dynamo" in sys.modules
        speed.maybe_compile(nn.Linear(2, 2), "on", torch.device("cpu"))
        torch.optim.SGD([weight], lr=0.1).zero_grad()
        method = torch.optim.Optimizer.zero_grad.__wrapped__
        own = getattr(method, compiler_import.MARK, None)
        print(json.dumps({"marked": marked, "before": before, "fitted": fitted,
                          "after": "torch._dynamo" in sys.modules,
                          "torch_marks": own is not None and own is not method,
                          "pending": compiler_import.pending()}))
    """)
    assert found["marked"] and not found["before"]  # the fit imported no compiler
    assert found["fitted"] == pytest.approx([1.0, -2.0, 0.5], abs=1e-4)
    # compiling took the marks away: the compiler was imported and marked the methods
    assert found["after"] and found["torch_marks"] and not found["pending"]


def test_without_defer_the_first_optimizer_imports_the_compiler():
    """What `defer` saves, and that torch still behaves as its wrapper says (if torch
    stopped importing the compiler here, the deferral would be moot)."""
    found = _fresh("""
        import json, sys, torch
        from convnet.training import compiler_import
        before = compiler_import.pending()
        torch.optim.LBFGS([torch.zeros(2, requires_grad=True)]).zero_grad()
        print(json.dumps({"imported": "torch._dynamo" in sys.modules, "before": before,
                          "pending": compiler_import.pending()}))
    """)
    assert found["before"] and found["imported"] and not found["pending"]


def test_the_wrappers_are_found_on_the_optimizer():
    """The methods torch wraps in this version (adding groups, zeroing, state dicts)."""
    names = {method.__name__ for method in compiler_import._wrapped_methods()}
    assert {"add_param_group", "zero_grad", "state_dict", "load_state_dict"} <= names


def test_a_torch_that_wraps_otherwise_defers_nothing(monkeypatch):
    """Another torch without this wrapper: the command runs as before, importing the
    compiler where torch does."""
    import torch

    monkeypatch.delattr(torch._compile, "_disable_dynamo")
    assert compiler_import._wrapped_methods() == []


def test_a_deferred_step_updates_as_torchs_step_and_imports_nothing():
    """`step` against ``optimizer.step()`` on the same AdamW from the same weights and
    gradients: the same weights after, and no compiler imported for the deferred one."""
    found = _fresh("""
        import json, sys, torch
        from convnet.training import compiler_import

        def run(deferred):
            torch.manual_seed(0)
            weights = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(3))]
            optimizer = torch.optim.AdamW(weights, lr=0.1, weight_decay=0.01)
            for _ in range(3):
                optimizer.zero_grad()
                (weights[0].sin().sum() + (weights[1] ** 2).sum()).backward()
                compiler_import.step(optimizer) if deferred else optimizer.step()
            return [w.detach().flatten().tolist() for w in weights]

        compiler_import.defer()
        ours = run(True)
        before = "torch._dynamo" in sys.modules
        theirs = run(False)
        print(json.dumps({"ours": ours, "theirs": theirs, "before": before,
                          "after": "torch._dynamo" in sys.modules}))
    """)
    assert not found["before"] and found["after"]  # torch's own step does import it
    for ours, theirs in zip(found["ours"], found["theirs"]):
        assert ours == pytest.approx(theirs, abs=0, rel=0)


def test_what_is_left_to_pay_and_the_import_before_the_steps():
    """Fresh, the first optimizer imports the compiler: `before_steps` pays it ahead, and
    then nothing is left. Deferred, nothing is due and `before_steps` imports nothing."""
    found = _fresh("""
        import json, sys
        from convnet.training import compiler_import
        fresh = compiler_import.unpaid()
        compiler_import.defer()
        deferred = compiler_import.unpaid()
        compiler_import.before_steps()
        kept_out = "torch._dynamo" not in sys.modules
        compiler_import.restore()  # as before compiling: the steps would import it now
        restored = compiler_import.unpaid()
        compiler_import.before_steps()
        print(json.dumps({"fresh": fresh, "deferred": deferred, "kept_out": kept_out,
                          "restored": restored, "paid": compiler_import.unpaid(),
                          "imported": "torch._dynamo" in sys.modules}))
    """)
    cost = compiler_import.SECONDS
    assert found["fresh"] == cost and found["deferred"] == 0.0 and found["kept_out"]
    assert found["restored"] == cost and found["paid"] == 0.0 and found["imported"]


def test_a_deferred_runs_epochs_import_no_compiler_and_match_torchs_steps():
    """The epochs of a run in a deferred process: the same weights as with torch's own
    steps, no compiler imported, and no warning from the schedule that its optimizer had
    not stepped."""
    found = _fresh("""
        import json, sys, warnings
        import torch
        from convnet import data as datasets
        from convnet.training import TrainConfig, compiler_import, prepare

        def weights(deferred):
            if deferred:
                compiler_import.defer()
            else:
                compiler_import.restore()
            run = prepare(datasets.load("shapes:size=12,train=30,test=5"),
                          TrainConfig(data="shapes", arch="conv4k3-relu-gap-fc", epochs=2,
                                      batch_size=16, augment="none", ema=0.9, lr=0.01, seed=0))
            run.loop.run(None, lambda network, split: None)
            return [t.flatten().tolist() for t in run.state.network.state_dict().values()]

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ours = weights(True)
        imported = "torch._dynamo" in sys.modules
        theirs = weights(False)
        print(json.dumps({"ours": ours, "theirs": theirs, "imported": imported,
                          "warned": [str(w.message)[:80] for w in caught],
                          "after": "torch._dynamo" in sys.modules}))
    """)
    assert not found["imported"] and found["after"]
    assert not [line for line in found["warned"] if "lr_scheduler" in line], found["warned"]
    for ours, theirs in zip(found["ours"], found["theirs"]):
        assert ours == pytest.approx(theirs, abs=0, rel=0)


def test_a_step_hook_is_called_while_deferred():
    """Only torch's own step calls step hooks: with one registered, `step` takes it."""
    found = _fresh("""
        import json, torch
        from convnet.training import compiler_import
        compiler_import.defer()
        weight = torch.nn.Parameter(torch.ones(2))
        optimizer = torch.optim.AdamW([weight], lr=0.1)
        calls = []
        optimizer.register_step_post_hook(lambda *_: calls.append(1))
        weight.sum().backward()
        compiler_import.step(optimizer)
        print(json.dumps({"calls": len(calls), "moved": weight.detach().tolist()}))
    """)
    assert found["calls"] == 1 and found["moved"] != [1.0, 1.0]


def test_the_loop_imports_the_compiler_before_its_first_epoch_is_timed(monkeypatch):
    """A time budget fits the epochs by the first one's time: the import must not be in
    it. `before_steps` runs before any epoch starts, and not for a run with none left."""
    from convnet import data as datasets
    from convnet.training import TrainConfig, prepare
    from convnet.training.callbacks import Callback

    calls: list[str] = []
    monkeypatch.setattr(compiler_import, "before_steps", lambda: calls.append("import"))

    class Order(Callback):
        def on_epoch_start(self, epoch: int) -> None:
            calls.append(f"epoch {epoch}")

    run = prepare(datasets.load("shapes:size=12,train=30,test=5"),
                  TrainConfig(data="shapes", arch="conv4k3-relu-gap-fc", epochs=2,
                              batch_size=16, augment="none", ema=0.9, lr=0.01, seed=0))
    run.loop.run(None, lambda network, split: None, [Order()])
    assert calls == ["import", "epoch 1", "epoch 2"]
    run.loop.run(None, lambda network, split: None, [Order()])  # every epoch done
    assert calls == ["import", "epoch 1", "epoch 2"]
