"""A fake machine for the plans: speed probes whose seconds grow with the image's area."""

from __future__ import annotations


def fake_machine(monkeypatch, seconds_per_image: float) -> None:
    """Every plan's probes (`convnet.plan.loading`) on a machine where a training step
    takes ``seconds_per_image`` per image at 96 px, in proportion to the area, and a
    forward pass a fifth of that."""
    from convnet.plan import loading

    def probe(arch, shape, classes, batch):
        return seconds_per_image * (shape[0] / 96) ** 2

    def passes(arch, shape, classes, fp32):
        return probe(arch, shape, classes, 8) / 5
    monkeypatch.setattr(loading, "probe_on", lambda device, precision: probe)
    monkeypatch.setattr(loading, "passes_on", lambda device, precision: passes)
