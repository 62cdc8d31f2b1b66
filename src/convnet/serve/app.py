"""`convnet serve`: the FastAPI app. Routes parse and answer; the work is done by the run
(`Run`, its one inference path), the batcher and the decoder, all in the library.

Client input is never a path and never reaches a traceback: every failure is a JSON
``{"error": ...}`` with the status that names it (413, 415, 422, 404, 401, 503, 504).
"""

from __future__ import annotations

import asyncio
import io
import warnings
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

import torch
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from PIL import Image
from starlette.exceptions import HTTPException as StarletteHTTPException

from convnet.axes import to_chw
from convnet.data.preprocess import ImageError, decode
from convnet.errors import ConvnetError
from convnet.network.summary import summarize
from convnet.runs.predictor import Prediction, Predictor, with_sets
from convnet.runs.run import Run
from convnet.runs.unknown import share_from
from convnet.serve.batching import Batcher, Overloaded
from convnet.serve.limits import Admission, BodyLimit, Limits, Timing
from convnet.serve.metrics import Metrics


@dataclass
class Served:
    """One run behind the API: the run, the predictor its batches go to, the batcher."""

    name: str
    run: Run
    predictor: Predictor
    backend: str
    batcher: Batcher


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


INLINE_PIXELS = 256 * 256  # an image this small decodes faster than a thread hop


def _small(data: bytes) -> bool:
    """Whether the image's header says it is small enough to decode on the event loop (the
    file size alone does not: a small PNG can hold a very large image)."""
    try:
        with warnings.catch_warnings(), Image.open(io.BytesIO(data)) as image:  # the header
            warnings.simplefilter("ignore")
            return image.width * image.height <= INLINE_PIXELS
    except Exception:  # not an image, or a damaged header: the decoder says which, quickly
        return True


async def _decode(served: Served, data: bytes, name: str) -> torch.Tensor:
    """uint8 (C, H, W) at the run's size; larger images are decoded off the event loop."""
    try:
        if _small(data):
            pixels = decode(data, served.run.preprocess)
        else:
            pixels = await asyncio.to_thread(decode, data, served.run.preprocess)
    except ImageError as error:
        status = 415 if str(error).startswith("not an image") else 422
        raise HTTPException(status, f"{name}: {error}") from None
    return to_chw(torch.from_numpy(pixels))


async def _images(request: Request, limits: Limits) -> list[tuple[str, bytes]]:
    """(name, bytes) of the uploaded images: multipart parts, or the raw body as one."""
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        form = await request.form(max_files=limits.max_files, max_fields=limits.max_files,
                                  max_part_size=limits.max_body)
        files = [(value.filename or key, await value.read()) for key, value in form.multi_items()
                 if hasattr(value, "read")]
        if not files:
            raise HTTPException(422, "no image in the form: send files as multipart parts "
                                     "(any field name), or one image as the raw body")
        return files
    body = await request.body()
    if not body:
        raise HTTPException(422, "empty body: send an image (PNG, JPEG, ...) as the body "
                                 "or as multipart parts")
    return [("body", body)]


def _rounded(tensor: torch.Tensor, digits: int = 4) -> list:
    return torch.round(tensor.float(), decimals=digits).tolist()


def inside(run: Run, image: torch.Tensor, cls: str | None) -> dict[str, Any]:
    """What the page draws for one image (uint8 (C, H, W)): the prediction, the input as
    the network sees it, every layer's output in spec order, and Grad-CAM for ``cls``
    (default: the predicted class)."""
    probabilities = run.predict(image)[0]  # (classes,)
    order = probabilities.argsort(descending=True).tolist()
    prediction = Prediction("image", {run.classes[i]: float(probabilities[i]) for i in order})
    chosen = cls or run.classes[order[0]]
    layers = [{"position": info.position, "name": info.name, "shape": list(info.out_shape),
               "conv": info.name.startswith("conv"), "values": _rounded(values)}
              for info, values in run.feature_maps(image)]
    return {"prediction": prediction.to_dict(len(run.classes)),
            "input": {"shape": list(image.shape), "values": image.tolist()},
            "layers": layers, "gradcam": {"class": chosen,
                                          "values": _rounded(run.gradcam(image, chosen), 3)}}


class Api:
    """What the routes share: the served runs, limits, metrics, admission and the key."""

    def __init__(self, served: dict[str, Served], limits: Limits, api_key: str | None):
        self.served, self.limits, self.api_key = served, limits, api_key
        self.metrics, self.admitted = Metrics(), Admission(limits.max_in_flight)
        self.ready = False
        self.scores: dict[str, dict[str, Any] | None] = {}

    def authorised(self, request: Request) -> None:
        if self.api_key is None:
            return
        given = request.headers.get("x-api-key") or \
            request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if given != self.api_key:
            raise HTTPException(401, "missing or wrong API key: send it as X-API-Key")

    def listed(self) -> list[Served]:
        """The models behind the API now."""
        return list(self.served.values())

    def model(self, name: str) -> Served:
        if name not in self.served:
            raise HTTPException(404, f"no model named {name!r}; served: "
                                     f"{', '.join(self.served)}")
        return self.served[name]

    async def evaluation(self, chosen: Served) -> dict[str, Any] | None:
        """The run scored on its own test (or held-out) images, once; None when its data
        cannot be loaded here (moved, or a download that is not cached)."""
        if chosen.name not in self.scores:
            try:
                split, what = await asyncio.to_thread(chosen.run.labelled)
                result = await asyncio.to_thread(chosen.run.evaluate, split)
                self.scores[chosen.name] = {"on": what, **result.to_dict()}
            except ConvnetError:
                self.scores[chosen.name] = None
        return self.scores[chosen.name]


def error_handlers(app: FastAPI) -> None:
    """Every failure as a JSON {"error": ...}; nothing from client input reaches a 500."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        return _error(error.status_code, str(error.detail), getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(request: Request, error: RequestValidationError):
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "query")
        return _error(422, f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception):
        return _error(500, f"internal error ({type(error).__name__}); the server goes on")


def health_routes(app: FastAPI, api: Api) -> None:
    """Liveness and readiness: the two routes no API key guards."""

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz():
        return {"status": "ready"} if api.ready else _error(503, "starting")


def _service_routes(app: FastAPI, api: Api) -> None:
    """Metrics and the page."""
    guarded = [Depends(api.authorised)]

    @app.get("/metrics", response_class=PlainTextResponse, dependencies=guarded)
    async def metrics_text() -> str:
        depth = sum(m.batcher.depth for m in api.served.values())
        sizes = [size for m in api.served.values() for size in m.batcher.batch_sizes]
        for m in api.served.values():
            m.batcher.batch_sizes.clear()
        return api.metrics.text(depth, sizes)

    @app.get("/", response_class=HTMLResponse, dependencies=guarded)
    async def page() -> str:
        return (resources.files("convnet.serve") / "static" / "index.html").read_text()


def _asked(chosen: Served, coverage: float | None, unknown: str | None) -> float | None:
    """The share kept known for the verdict (None: no verdict), after checking the set's
    coverage and the share; a bad one is a 422 before any image is decoded."""
    try:
        if coverage is not None:
            chosen.run.record.calibration.set_floor(coverage)
        share = share_from(unknown, chosen.predictor.detector is not None)
        if share is not None:
            chosen.predictor.unknown_cut(share)
    except ConvnetError as error:
        raise HTTPException(422, str(error)) from None
    return share


async def _predict(api: Api, chosen: Served, request: Request, top: int,
                   coverage: float | None = None, unknown: str | None = None) -> JSONResponse:
    share = _asked(chosen, coverage, unknown)
    uploads = await _images(request, api.limits)
    images = [await _decode(chosen, data, label) for label, data in uploads]
    try:
        rows = await asyncio.gather(*(chosen.batcher.submit(image) for image in images))
    except Overloaded:
        raise HTTPException(503, "busy: the queue is full, try again shortly",
                            headers={"Retry-After": "1"}) from None
    except TimeoutError:
        raise HTTPException(504, "the prediction waited too long in the queue") from None
    answers = [chosen.predictor.answer(label, row, score, share)
               for (label, _), (row, score) in zip(uploads, rows)]
    answers = with_sets(answers, chosen.run.record.calibration, coverage)
    single = len(answers) == 1 and uploads[0][0] == "body"
    # a JSONResponse of plain values: FastAPI's generic encoder costs more than the model
    found = [answer.to_dict(top) for answer in answers]
    return JSONResponse(found[0] if single else found)


def model_routes(app: FastAPI, api: Api) -> None:
    """The model listing, a model's card, predict, look inside, and the arithmetic of one
    value."""
    guarded = [Depends(api.authorised)]
    _answer_routes(app, api, guarded)
    _inside_routes(app, api, guarded)


def _answer_routes(app: FastAPI, api: Api, guarded: list) -> None:
    """What the models are, and what they answer."""

    @app.get("/v1/models", dependencies=guarded)
    async def models() -> list[dict[str, Any]]:
        return [{"name": m.name, "classes": m.run.classes, "input_shape": m.run.input_shape,
                 "backend": m.backend, "spec": m.run.record.spec} for m in api.listed()]

    @app.get("/v1/models/{name}", dependencies=guarded)
    async def model_card(name: str) -> dict[str, Any]:
        chosen = api.model(name)
        summary = summarize(chosen.run.network)
        return {"name": name, "backend": chosen.backend, "record": chosen.run.meta,
                "summary": {"rows": [list(row) for row in summary.table_rows()],
                            "params": summary.params, "comparison": summary.comparison()},
                "evaluation": await api.evaluation(chosen)}

    @app.post("/v1/models/{name}/predict", dependencies=guarded)
    async def predict(name: str, request: Request, top: int = Query(3, ge=1, le=1000),
                      coverage: float | None = Query(None, alias="set"),
                      unknown: str | None = Query(None)) -> Any:
        chosen = api.model(name)
        with api.admitted:
            return await _predict(api, chosen, request, top, coverage, unknown)


def _inside_routes(app: FastAPI, api: Api, guarded: list) -> None:
    """Looking inside a model: the feature maps and Grad-CAM of an image, and the arithmetic
    of one value."""

    @app.post("/v1/models/{name}/explain", dependencies=guarded)
    async def explain(name: str, request: Request,
                      cls: str | None = Query(None, alias="class")) -> Any:
        chosen = api.model(name)
        if cls is not None and cls not in chosen.run.classes:
            raise HTTPException(422, f"class: {cls!r} is not one of the model's classes "
                                     f"({', '.join(chosen.run.classes)})")
        label, data = (await _images(request, api.limits))[0]
        image = await _decode(chosen, data, label)
        return JSONResponse(await asyncio.to_thread(inside, chosen.run, image, cls))

    @app.post("/v1/models/{name}/explain/at", dependencies=guarded)
    async def explain_at(name: str, request: Request, layer: int = Query(..., ge=1),
                         y: int = Query(..., ge=0), x: int = Query(..., ge=0),
                         filter: int = Query(0, ge=0)) -> dict[str, Any]:
        chosen = api.model(name)
        label, data = (await _images(request, api.limits))[0]
        image = await _decode(chosen, data, label)
        try:
            found = await asyncio.to_thread(chosen.run.explain_at, image, layer, y, x, filter)
        except ConvnetError as error:
            raise HTTPException(422, str(error)) from None
        return {"layer": found.layer, "y": found.y, "x": found.x, "filter": found.filter,
                "patch": found.patch.tolist(), "weights": found.weights.tolist(),
                "products": found.products.tolist(), "bias": found.bias,
                "value": found.value, "actual": found.actual,
                "after": [{"layer": token, "text": text} for token, text in found.after]}


def create_app(served: dict[str, Served], limits: Limits | None = None,
               api_key: str | None = None) -> FastAPI:
    """The app for ``served`` runs by name."""
    api = Api(served, limits or Limits(), api_key)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        for model in served.values():
            model.batcher.start()
        api.ready = True
        yield
        api.ready = False
        for model in served.values():  # finish requests in flight
            await model.batcher.stop()

    app = FastAPI(title="convnet serve", lifespan=lifespan,
                  description="Image classification with convnet runs: predictions, "
                              "feature maps, Grad-CAM and the arithmetic of one value.")
    app.add_middleware(BodyLimit, max_body=api.limits.max_body)
    app.add_middleware(Timing, metrics=api.metrics)
    error_handlers(app)
    health_routes(app, api)
    _service_routes(app, api)
    model_routes(app, api)
    return app
