"""`convnet studio`: the FastAPI app over a workspace. Datasets and jobs are the
workspace's files (`Workspace`), training is the runner's child process (`Runner`), and
finished models answer through `convnet serve`'s routes (predict, explain).

Every failure is a JSON ``{"error": ...}`` with the status that names it, as in serve.
"""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.responses import StreamingResponse

from convnet.errors import ConvnetError
from convnet.make.early import newest
from convnet.serve.app import Api, Served, error_handlers, health_routes, model_routes
from convnet.serve.batching import Batcher
from convnet.serve.limits import BodyLimit, Limits
from convnet.studio.runner import Runner
from convnet.studio.unzip import ZipRefused
from convnet.studio.workspace import Workspace

LIMITS = Limits(max_body=256 * 1024 * 1024, max_files=1000)  # a zip, or many images
ENDED = ("finished", "failed", "cancelled")
FILES = ("curves.png", "confusion.png", "wrong.png", "report.html", "model.onnx",
         "suspects.png")
EVENT_EVERY, EVENT_LIMIT = 0.5, 6 * 3600  # seconds between looks; longest stream


class StudioApi(Api):
    """serve's `Api` whose models are the workspace's finished jobs, loaded when asked."""

    def __init__(self, space: Workspace, runner: Runner, api_key: str | None):
        super().__init__({}, LIMITS, api_key)
        self.space, self.runner = space, runner
        self.early: dict[str, Path] = {}  # job -> the version of its model so far served
        self.stopping: set[asyncio.Task] = set()  # replaced batchers, until they stop

    def model(self, name: str) -> Served:
        self.refresh()
        return super().model(name)

    def listed(self) -> list[Served]:
        self.refresh()
        return super().listed()

    def refresh(self) -> None:
        """Serve every finished job's run, and for any other job its model so far
        (`convnet.make.early`: the new head, then each better epoch), replaced as newer
        ones come; batchers start here, on the event loop."""
        for job in self.space.jobs():
            if job.state == "finished":
                if job.id not in self.served or job.id in self.early:
                    self._serve(job.id, self.space.run_dir(job.id), None)
                continue
            found = newest(self.space.early_dir(job.id))
            if found is not None and self.early.get(job.id) != found[0]:
                self._serve(job.id, found[0], found[0])

    def _serve(self, id: str, folder: Path, early: Path | None) -> None:
        from convnet.runs.run import load

        try:
            run = load(folder)
        except ConvnetError:  # not written yet, or removed by a newer one: the next look
            return
        batcher = Batcher(run.predictor.rows)
        batcher.start()
        replaced = self.served.get(id)
        self.served[id] = Served(id, run, run.predictor, "torch", batcher)
        if early is None:
            self.early.pop(id, None)
        else:
            self.early[id] = early
        if replaced is not None:
            task = asyncio.get_running_loop().create_task(replaced.batcher.stop())
            self.stopping.add(task)
            task.add_done_callback(self.stopping.discard)

    def status(self, id: str) -> dict[str, Any]:
        try:
            job = self.space.job(id)
        except KeyError:
            raise HTTPException(404, f"no job {id!r}") from None
        progress = self.space.progress(id)
        early = None if job.state == "finished" else newest(self.space.early_dir(id))
        return {**job.to_dict(), "epoch": progress.get("epoch", 0),
                "epochs": progress.get("epochs"), "step": progress.get("step", 0),
                "steps": progress.get("steps"), "metrics": progress.get("history", []),
                "plan": progress.get("plan"), "notes": progress.get("notes", []),
                "head": progress.get("head_val_acc"),
                "model": job.id if job.state == "finished" or early else None,
                # what answers before the run ends: {"after", "val_acc", "epoch"}
                "early": early and early[1]}


def _dataset(api: StudioApi, name: str) -> Path:
    try:
        return api.space.dataset_dir(name)
    except KeyError:
        raise HTTPException(404, f"no dataset {name!r}; upload it first") from None


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(422, "the body must be JSON") from None
    if not isinstance(body, dict):
        raise HTTPException(422, "the body must be a JSON object")
    return body


def _dataset_routes(app: FastAPI, api: StudioApi) -> None:
    guarded = [Depends(api.authorised)]
    _thumbnail_route(app, api, guarded)

    @app.get("/v1/datasets", dependencies=guarded)
    async def datasets() -> list[dict[str, Any]]:
        return await asyncio.to_thread(api.space.datasets)

    @app.post("/v1/datasets", dependencies=guarded, status_code=201)
    async def upload(request: Request) -> Any:
        form = await request.form(max_files=2, max_fields=4, max_part_size=LIMITS.max_body)
        name, file = form.get("name"), form.get("file")
        if not isinstance(name, str) or not name:
            raise HTTPException(422, "name: a dataset name is required (a form field)")
        try:
            if file is None or isinstance(file, str):
                return await asyncio.to_thread(api.space.create, name)
            data = await file.read()
            return await asyncio.to_thread(api.space.add_dataset, name, data)
        except ZipRefused as error:
            raise HTTPException(422, f"file: {error}") from None
        except FileExistsError:
            raise HTTPException(409, f"a dataset named {name!r} exists already") from None

    @app.get("/v1/datasets/{name}", dependencies=guarded)
    async def dataset(name: str) -> dict[str, Any]:
        _dataset(api, name)
        return await asyncio.to_thread(api.space.describe, name)

    @app.get("/v1/datasets/{name}/check", dependencies=guarded)
    async def check(name: str) -> dict[str, Any]:
        from convnet import data as datasets_module

        folder = _dataset(api, name)
        try:
            loaded = await asyncio.to_thread(datasets_module.load, str(folder), near=True)
        except ConvnetError as error:
            raise HTTPException(422, str(error)) from None
        return loaded.report.to_dict()



def _class_routes(app: FastAPI, api: StudioApi) -> None:
    """A dataset's classes: add one, rename one, add images to one."""
    guarded = [Depends(api.authorised)]

    @app.post("/v1/datasets/{name}/classes", dependencies=guarded, status_code=201)
    async def add_class(name: str, request: Request) -> dict[str, Any]:
        _dataset(api, name)
        body = await _json(request)
        try:
            return api.space.add_class(name, str(body.get("name", "")))
        except ZipRefused as error:
            raise HTTPException(422, f"name: {error}") from None

    @app.patch("/v1/datasets/{name}/classes/{cls}", dependencies=guarded)
    async def rename_class(name: str, cls: str, request: Request) -> dict[str, Any]:
        _dataset(api, name)
        body = await _json(request)
        try:
            return api.space.rename_class(name, cls, str(body.get("name", "")))
        except ZipRefused as error:
            raise HTTPException(422, f"name: {error}") from None
        except KeyError:
            raise HTTPException(404, f"no class {cls!r} in {name!r}") from None
        except FileExistsError:
            raise HTTPException(409, f"class {body.get('name')!r} exists already") from None

    @app.post("/v1/datasets/{name}/classes/{cls}/images", dependencies=guarded,
              status_code=201)
    async def add_images(name: str, cls: str, request: Request,
                         split: str = "train") -> dict[str, Any]:
        _dataset(api, name)
        form = await request.form(max_files=LIMITS.max_files, max_fields=LIMITS.max_files,
                                  max_part_size=LIMITS.max_body)
        files = [(value.filename or key, await value.read())
                 for key, value in form.multi_items() if hasattr(value, "read")]
        if not files:
            raise HTTPException(422, "no image in the form: send them as multipart parts")
        try:
            return await asyncio.to_thread(api.space.add_images, name, cls, files, split)
        except ZipRefused as error:
            raise HTTPException(422, str(error)) from None


def _thumbnail_route(app: FastAPI, api: StudioApi, guarded: list) -> None:
    """A class card's thumbnails: its first training images, small."""

    @app.get("/v1/datasets/{name}/classes/{cls}/thumbs/{index}", dependencies=guarded)
    async def thumbnail(name: str, cls: str, index: int) -> Response:
        try:
            data = await asyncio.to_thread(api.space.thumbnail, name, cls, index)
        except (KeyError, ZipRefused):
            raise HTTPException(404, f"no image {index} in class {cls!r} of {name!r}") \
                from None
        except ConvnetError as error:
            raise HTTPException(415, str(error)) from None
        return Response(data, media_type="image/png")


def _job_routes(app: FastAPI, api: StudioApi) -> None:
    """The plan of a job, and its life: submitted, listed, cancelled, resumed, watched."""
    guarded = [Depends(api.authorised)]
    _new_job_routes(app, api, guarded)
    _running_job_routes(app, api, guarded)


def _new_job_routes(app: FastAPI, api: StudioApi, guarded: list) -> None:
    """The plan a job would follow, and a new job."""

    @app.post("/v1/plan", dependencies=guarded)
    async def plan(request: Request) -> dict[str, Any]:
        from convnet.plan import preview as make_plan

        body = await _json(request)
        folder = _dataset(api, str(body.get("dataset", "")))
        options = body.get("options") or {}
        try:
            planned = await asyncio.to_thread(make_plan, data=str(folder), **options)
        except (ConvnetError, TypeError) as error:
            raise HTTPException(422, f"options: {error}") from None
        return {"headline": planned.headline(), **planned.to_dict()}

    @app.post("/v1/jobs", dependencies=guarded, status_code=201)
    async def new_job(request: Request) -> dict[str, Any]:
        body = await _json(request)
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise HTTPException(422, "options: a JSON object of train options")
        _dataset(api, str(body.get("dataset", "")))
        try:
            job = api.space.new_job(str(body["dataset"]), options)
        except ConvnetError as error:
            raise HTTPException(422, f"options: {error}") from None
        api.runner.submit()
        return {"id": job.id, "state": job.state}


def _running_job_routes(app: FastAPI, api: StudioApi, guarded: list) -> None:
    """The jobs listed and watched, one cancelled or resumed."""

    @app.get("/v1/jobs", dependencies=guarded)
    async def jobs() -> list[dict[str, Any]]:
        return [api.status(job.id) for job in api.space.jobs()]

    @app.get("/v1/jobs/{id}", dependencies=guarded)
    async def job(id: str) -> dict[str, Any]:
        return api.status(id)

    @app.delete("/v1/jobs/{id}", dependencies=guarded)
    async def cancel(id: str) -> dict[str, Any]:
        api.status(id)
        await asyncio.to_thread(api.runner.cancel, id)
        return api.status(id)

    @app.post("/v1/jobs/{id}/resume", dependencies=guarded)
    async def resume(id: str) -> dict[str, Any]:
        found = api.status(id)
        if found["state"] not in ("cancelled", "failed"):
            raise HTTPException(409, f"job {id} is {found['state']}; only a cancelled or "
                                     "failed job can be resumed")
        job = api.space.job(id)
        job.state, job.cancel, job.error = "queued", False, None
        api.space.save(job)
        api.runner.submit()
        return api.status(id)

    @app.get("/v1/jobs/{id}/events", dependencies=guarded)
    async def events(id: str, request: Request) -> StreamingResponse:
        api.status(id)
        return StreamingResponse(_stream(api, id, request), media_type="text/event-stream")



def _result_routes(app: FastAPI, api: StudioApi) -> None:
    """What a finished job made: its pictures and page, the run as a zip, its ONNX file."""
    guarded = [Depends(api.authorised)]

    @app.get("/v1/jobs/{id}/files/{name}", dependencies=guarded)
    async def file(id: str, name: str) -> Response:
        api.status(id)
        path = api.space.run_dir(id) / name
        if name not in FILES or not path.is_file():
            raise HTTPException(404, f"no file {name!r} in job {id}'s run (files: "
                                     f"{', '.join(FILES)})")
        return FileResponse(path)

    @app.get("/v1/jobs/{id}/download", dependencies=guarded)
    async def download(id: str) -> Response:
        if api.status(id)["state"] != "finished":
            raise HTTPException(409, f"job {id} has not finished")
        data = await asyncio.to_thread(_zipped, api.space.run_dir(id))
        return Response(data, media_type="application/zip", headers={
            "Content-Disposition": f'attachment; filename="{id}.zip"'})

    @app.post("/v1/jobs/{id}/export", dependencies=guarded)
    async def export(id: str) -> Response:
        from convnet.export import export_onnx

        if api.status(id)["state"] != "finished":
            raise HTTPException(409, f"job {id} has not finished")
        folder = api.space.run_dir(id)
        if not (folder / "model.onnx").is_file():
            try:
                await asyncio.to_thread(export_onnx, folder)
            except (ConvnetError, ImportError) as error:
                raise HTTPException(422, f"export: {error}") from None
        return FileResponse(folder / "model.onnx", filename=f"{id}.onnx")


async def _stream(api: StudioApi, id: str, request: Request):
    """Server-sent events: the job's status whenever it changes, until it ends."""
    last, waited = None, 0.0
    while waited < EVENT_LIMIT and not await request.is_disconnected():
        status = api.status(id)
        text = json.dumps(status)
        if text != last:
            yield f"data: {text}\n\n"
            last = text
        if status["state"] in ENDED:
            return
        await asyncio.sleep(EVENT_EVERY)
        waited += EVENT_EVERY


def _zipped(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, Path(folder.name) / path.relative_to(folder))
    return buffer.getvalue()


def _pages(app: FastAPI, api: StudioApi) -> None:
    """The studio's page, and serve's page for trying its models."""
    guarded = [Depends(api.authorised)]

    @app.get("/", response_class=HTMLResponse, dependencies=guarded)
    async def page() -> str:
        return (resources.files("convnet.studio") / "static" / "index.html").read_text()

    @app.get("/try", response_class=HTMLResponse, dependencies=guarded)
    async def try_page() -> str:  # serve's page: predictions and what the network sees
        return (resources.files("convnet.serve") / "static" / "index.html").read_text()


def create_app(root: Path, api_key: str | None = None) -> FastAPI:
    """The studio app over the workspace folder ``root`` (created if new)."""
    space = Workspace(root)
    runner = Runner(space)
    api = StudioApi(space, runner, api_key)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        runner.start()
        api.ready = True
        yield
        api.ready = False
        await asyncio.to_thread(runner.stop)
        for model in api.served.values():
            await model.batcher.stop()

    app = FastAPI(title="convnet studio", lifespan=lifespan,
                  description="Make a dataset, train a CNN on it, watch it learn, try it.")
    app.add_middleware(BodyLimit, max_body=LIMITS.max_body)
    error_handlers(app)
    health_routes(app, api)
    _pages(app, api)
    _dataset_routes(app, api)
    _class_routes(app, api)
    _job_routes(app, api)
    _result_routes(app, api)
    model_routes(app, api)
    return app
