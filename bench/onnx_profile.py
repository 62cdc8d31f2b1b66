"""Where an exported file spends its time in onnxruntime: the median time of a pass and
each operator's share of it, from onnxruntime's own profiler.

    python bench/onnx_profile.py RUN/model.onnx RUN/model.int8.onnx --batch 32

Random uint8 pixels of the file's input shape; 5 passes to warm up, then `--passes` timed
ones (without the profiler) and as many profiled. Each file runs in this process in
turn, after a pause that lets the last one's threads stop spinning. This is how the
int8 export's costs were found (bench/HISTORY.md, "int8: where the time went").
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _session(path: Path, profile: bool):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    if profile:
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "profile")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _feed(session, batch: int) -> dict[str, np.ndarray]:
    found = session.get_inputs()[0]
    shape = [batch if not isinstance(side, int) else side for side in found.shape]
    pixels = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    return {found.name: pixels}


def profile(path: Path, batch: int, passes: int) -> tuple[float, dict[str, float]]:
    """(median seconds of a pass, {operator: share of the profiled kernels' time})."""
    session = _session(path, profile=False)
    feed = _feed(session, batch)
    for _ in range(5):
        session.run(None, feed)
    times = []
    for _ in range(passes):
        started = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - started)
    profiled = _session(path, profile=True)
    for _ in range(passes):
        profiled.run(None, feed)
    events = json.loads(Path(profiled.end_profiling()).read_text())
    spent: collections.Counter[str] = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            spent[event["args"]["op_name"]] += event["dur"]
    total = sum(spent.values()) or 1
    return statistics.median(times), {op: us / total for op, us in spent.most_common()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--passes", type=int, default=30)
    parser.add_argument("--top", type=int, default=8, help="operators shown per file")
    args = parser.parse_args()
    for path in args.files:
        time.sleep(0.5)
        seconds, shares = profile(path, args.batch, args.passes)
        top = ", ".join(f"{op} {share:.1%}" for op, share in list(shares.items())[: args.top])
        print(f"{path} (batch {args.batch}): {seconds * 1000:.2f} ms; {top}", flush=True)


if __name__ == "__main__":
    main()
