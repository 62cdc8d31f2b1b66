"""Prometheus text for `/metrics`: requests by route and status, latency histogram, batch
sizes and queue depth. Kept by hand (a few counters) rather than with a client library."""

from __future__ import annotations

from collections import Counter

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Histogram:
    def __init__(self, buckets: tuple[float, ...]):
        self.buckets, self.counts = buckets, [0] * (len(buckets) + 1)
        self.sum, self.count = 0.0, 0

    def observe(self, value: float) -> None:
        index = next((i for i, edge in enumerate(self.buckets) if value <= edge),
                     len(self.buckets))
        self.counts[index] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        out, running = [], 0
        for edge, count in zip([*self.buckets, "+Inf"], self.counts):
            running += count
            label = f'{labels},le="{edge}"' if labels else f'le="{edge}"'
            out.append(f"{name}_bucket{{{label}}} {running}")
        suffix = f"{{{labels}}}" if labels else ""
        return [*out, f"{name}_sum{suffix} {self.sum:.6f}", f"{name}_count{suffix} {self.count}"]


class Metrics:
    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()
        self.latency = Histogram(LATENCY_BUCKETS)
        self.batches = Histogram(BATCH_BUCKETS)

    def record(self, route: str, status: int, seconds: float) -> None:
        self.requests[(route, status)] += 1
        self.latency.observe(seconds)

    def text(self, queue_depth: int, batch_sizes: list[int]) -> str:
        for size in batch_sizes:
            self.batches.observe(size)
        batch_sizes.clear()
        lines = ["# TYPE convnet_requests_total counter"]
        lines += [f'convnet_requests_total{{route="{route}",status="{status}"}} {count}'
                  for (route, status), count in sorted(self.requests.items())]
        lines += ["# TYPE convnet_request_seconds histogram",
                  *self.latency.lines("convnet_request_seconds"),
                  "# TYPE convnet_batch_size histogram", *self.batches.lines("convnet_batch_size"),
                  "# TYPE convnet_queue_depth gauge", f"convnet_queue_depth {queue_depth}"]
        return "\n".join(lines) + "\n"
