"""The signal handling around training: the first SIGINT or SIGTERM asks the loop to stop,
a second SIGINT stops at once, and the previous handlers come back afterwards."""

from __future__ import annotations

import os
import signal

import pytest

from convnet.make.resume import StopOnSignals


def test_first_signal_asks_second_sigint_stops_at_once_handlers_restored():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with StopOnSignals() as signals:
        assert signals.stop_after_step() is None
        os.kill(os.getpid(), signal.SIGTERM)
        assert signals.stop_after_step() == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    assert signals.stop_after_step() is None
