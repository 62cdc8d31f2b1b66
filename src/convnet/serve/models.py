"""Which runs are served and on what backend, and starting the server."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from convnet import extras
from convnet.errors import ConvnetError
from convnet.runs.predictor import Predictor
from convnet.runs.run import Run, load
from convnet.serve.batching import Batcher

BACKENDS = ("auto", "torch", "onnx", "int8")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _onnx_available() -> bool:
    return extras.installed("onnx", ("onnxruntime", "onnxscript"))


def _predictor(run: Run, backend: str) -> tuple[Predictor, str]:
    """onnxruntime (faster on the CPUs measured, bench/RESULTS.md) for ``auto`` when it is
    installed: the run's model.onnx, or one exported (and parity-checked) to a temp folder
    when there is none or it has no "unknown" scores that the run has."""
    if backend == "torch" or backend == "auto" and not _onnx_available():
        return run.predictor, "torch"
    from convnet.export import OnnxPredictor, export_onnx

    if backend == "int8":
        from convnet.export.int8 import INT8_FILE

        path = run.path / INT8_FILE
        if not path.is_file():
            raise ConvnetError(f"{path} does not exist. Export it first: convnet export "
                               f"{run.path} --int8")
        return OnnxPredictor(path, run.classes), "onnx-int8"
    path = run.path / "model.onnx"
    if path.is_file():
        found = OnnxPredictor(path, run.classes)
        # a file exported before the run's detector cannot say "unknown": export it anew
        if found.detector is not None or run.predictor.detector is None:
            return found, "onnx"
    path = export_onnx(run.path, Path(tempfile.mkdtemp(prefix="convnet-serve-")) /
                       f"{run.path.name}.onnx").path
    return OnnxPredictor(path, run.classes), "onnx"


def load_served(paths: list[str | Path], backend: str = "auto", **batching):
    """`Served` runs by name (the folder name; repeated names get -2, -3...)."""
    from convnet.serve.app import Served

    if backend not in BACKENDS:
        raise ConvnetError(f"backend must be one of {', '.join(BACKENDS)}. Received: "
                           f"backend={backend!r}.")
    served = {}
    for path in paths:
        run = load(path)
        name, number = run.path.name, 1
        while name in served:
            number += 1
            name = f"{run.path.name}-{number}"
        predictor, used = _predictor(run, backend)
        served[name] = Served(name, run, predictor, used,
                              Batcher(predictor.rows, **batching))
    return served


def serve(paths: list[str | Path], host: str = "127.0.0.1", port: int = 8000,
          backend: str = "auto", api_key: str | None = None) -> None:
    """Serve runs until interrupted (uvicorn; Ctrl-C finishes requests in flight)."""
    extras.require("serve", "convnet serve needs FastAPI and uvicorn")
    import uvicorn

    from convnet.serve.app import create_app
    if host not in LOOPBACK:
        print(f"warning: serving on {host}, reachable from other machines"
              + ("" if api_key else "; consider --api-key"), file=sys.stderr)
    app = create_app(load_served(paths, backend), api_key=api_key)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10)
