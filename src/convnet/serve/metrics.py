"""`/metrics` in Prometheus's text format, kept by `prometheus_client` (the `serve` extra):
requests by route and status, a latency histogram, batch sizes and the queue depth. Each
app has its own registry, so two apps in one process never mix their counts."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("convnet_requests", "Requests by route and status.",
                                ["route", "status"], registry=self.registry)
        self.latency = Histogram("convnet_request_seconds", "Time to answer a request.",
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batches = Histogram("convnet_batch_size", "Images per batch the models ran.",
                                 buckets=BATCH_BUCKETS, registry=self.registry)
        self.depth = Gauge("convnet_queue_depth", "Images waiting for a batch.",
                           registry=self.registry)

    def record(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route=route, status=str(status)).inc()
        self.latency.observe(seconds)

    def text(self, queue_depth: int, batch_sizes: list[int]) -> str:
        """The exposition text, with the batches run since the last call counted in."""
        for size in batch_sizes:
            self.batches.observe(size)
        batch_sizes.clear()
        self.depth.set(queue_depth)
        return generate_latest(self.registry).decode()
