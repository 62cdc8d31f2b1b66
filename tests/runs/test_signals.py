"""The signal handling around training: the first SIGINT or SIGTERM asks the loop to stop,
a second SIGINT stops at once, and the previous handlers come back afterwards."""

from __future__ import annotations

import os
import signal

import pytest

from convnet.runs.resume import stop_on_signals


class _Loop:
    stop = staticmethod(lambda: False)
    stop_signal = staticmethod(lambda: "SIGINT")


def test_first_signal_asks_second_sigint_stops_at_once_handlers_restored():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    loop = _Loop()
    with stop_on_signals(loop):
        assert loop.stop() is False
        os.kill(os.getpid(), signal.SIGTERM)
        assert loop.stop() is True and loop.stop_signal() == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    assert loop.stop() is False
