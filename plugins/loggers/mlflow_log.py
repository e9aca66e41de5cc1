"""MLflow (``pip install 'cgx[mlflow]'``): by default a local store in the run folder,
``sqlite:///RUN/mlflow/mlflow.db`` with artifacts in ``RUN/mlflow/artifacts/`` (MLflow 3 keeps its
file store in maintenance mode and refuses it by default, so the store is SQLite:
``mlflow ui --backend-store-uri sqlite:///RUN/mlflow/mlflow.db``); or a tracking server,
``MLFLOW_TRACKING_URI=http://host:5000`` (or the ``tracking_uri`` argument). A store without a server
(a ``sqlite:`` or ``file:`` URI given) keeps a new experiment's artifacts in ``RUN/mlflow/artifacts/`` too,
never in ``./mlruns``.

The run's id and tracking URI are kept in ``RUN/mlflow/cgx-run.json``: a resumed run continues the
same MLflow run (on the same URI; another URI gets a new run, with a warning; so does a launch at step
0). A resumed run logs
again every step after its checkpoint; MLflow keeps every value logged, so the steps of each series
the run already holds are skipped. Scalars are metrics, image grids ``log_image`` series (their key:
the tag with only the characters MLflow accepts), the recipe the run's parameters (dotted keys) and
``recipe.yaml``; an event is the metric ``<event>/step`` at its step, its numbers metrics
(``best/value``) and its strings tags (``checkpoint/path``, ``best/metric``, ``best/checkpoint``: the
latest).

Against a server, unless set already, MLflow's HTTP retries are bounded for this process
(``MLFLOW_HTTP_REQUEST_MAX_RETRIES=2``, ``..._BACKOFF_FACTOR=1``, ``..._TIMEOUT=10``): a server
that goes away costs a few seconds once, then training goes on without it (its local logs kept)."""
from __future__ import annotations

import os
import re
import sys
import time
from typing import Any, Mapping, Optional

import numpy as np
import yaml

from cgx.extras import require
from cgx.plugins import hookimpl
from cgx.plugins.types import LogRun

from .run_record import RunRecord

HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
MAX_PARAM_LENGTH = 6000
BATCH = 100  # params per log_batch call (MLflow's limit)


def key_name(tag: str) -> str:
    """A tag as an MLflow metric or image key: ``A->B->A (real, fake)`` -> ``A to B to A real fake``."""
    name = re.sub(r"[^\w\-. /:]+", " ", tag.replace("->", " to "))
    return re.sub(r" +", " ", name).strip() or "value"


def flat(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """A nested recipe as dotted parameters: ``{"model.generator.name": "resnet", ...}``."""
    out = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flat(value, name + "."))
        else:
            out[key_name(name)] = str(value)[:MAX_PARAM_LENGTH]
    return out


class MlflowLogger:
    def __init__(self, experiment: str, run_name: Optional[str], tracking_uri: Optional[str]) -> None:
        self.experiment, self.run_name, self.tracking_uri = experiment, run_name, tracking_uri
        self.client = None

    def open(self, run: LogRun) -> None:
        from mlflow import MlflowClient

        folder = run.folder.mlflow
        folder.mkdir(parents=True, exist_ok=True)
        given = self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        uri = given or f"sqlite:///{(folder / 'mlflow.db').resolve()}"
        if uri.startswith(("http:", "https:")):
            for name, value in HTTP_LIMITS.items():
                os.environ.setdefault(name, value)
        self.client = MlflowClient(tracking_uri=uri)
        self.record = RunRecord.load(run.folder.logger_run(folder))
        self.run_id = self._continued(uri) if run.start_step else None  # step 0: a new run
        if self.run_id is not None:
            return
        experiment = self.client.get_experiment_by_name(self.experiment)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:  # a store without a server (the default one, or a given sqlite:/file: URI) keeps its artifacts
            # in the run folder too (else MLflow's default is ./mlruns, in the working directory)
            served = uri.startswith(("http:", "https:", "databricks"))
            location = None if served else (folder / "artifacts").resolve().as_uri()
            experiment_id = self.client.create_experiment(self.experiment, artifact_location=location)
        created = self.client.create_run(experiment_id, run_name=self.run_name or run.name,
                                         tags={"cgx.run_dir": str(run.folder.root.resolve())})
        self.run_id = created.info.run_id
        self.record.start(id=self.run_id, uri=uri, experiment=self.experiment)

    def _continued(self, uri: str) -> Optional[str]:
        """The recorded run, marked running again; None (warned) when it is on another URI or gone."""
        from mlflow.entities import RunStatus
        from mlflow.exceptions import MlflowException

        old, where = self.record.get("id"), self.record.get("uri")
        if old is None:
            return None
        if where != uri:
            print(f"cgx: warning: mlflow: run {old} was logged to {where}; this launch logs to {uri}: a new "
                  f"MLflow run", file=sys.stderr)
            return None
        try:
            self.client.get_run(old)
        except MlflowException as e:
            if e.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            print(f"cgx: warning: mlflow: run {old} is not on {uri} (deleted?): a new MLflow run", file=sys.stderr)
            return None
        self.client.update_run(old, status=RunStatus.to_string(RunStatus.RUNNING))
        return old

    def _metrics(self, step: int, values: Mapping[str, float], tags: Mapping[str, str] = {},
                 series: Optional[str] = None) -> None:
        from mlflow.entities import Metric, RunTag

        if series is not None:
            new = dict(values) if self.record.new(series, step) else {}
        else:
            new = {k: v for k, v in values.items() if self.record.new(k, step)}
        if not new:
            return
        now = int(time.time() * 1000)
        metrics = [Metric(key_name(k), float(v), now, step) for k, v in new.items()]
        self.client.log_batch(self.run_id, metrics=metrics, tags=[RunTag(key_name(k), str(v)) for k, v in tags.items()])
        self.record.note([series] if series is not None else new, step)

    def recipe(self, config: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        if not self.record.new("recipe", 0):
            return
        params = [Param(k, v) for k, v in flat(config).items()]
        for i in range(0, len(params), BATCH):
            self.client.log_batch(self.run_id, params=params[i:i + BATCH])
        self.client.log_text(self.run_id, yaml.safe_dump(dict(config), sort_keys=False), "recipe.yaml")
        self.record.note(["recipe"], 0)

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        self._metrics(step, values)

    def image(self, step: int, tag: str, grid: np.ndarray) -> None:
        if self.record.new(f"image/{tag}", step):
            self.client.log_image(self.run_id, grid, key=key_name(tag), step=step)
            self.record.note([f"image/{tag}"], step)

    def event(self, step: int, name: str, fields: Mapping[str, Any]) -> None:
        numbers = {f"{name}/{k}": v for k, v in fields.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        strings = {f"{name}/{k}": v for k, v in fields.items() if f"{name}/{k}" not in numbers}
        self._metrics(step, {f"{name}/step": step, **numbers}, strings, series=f"event/{name}")

    def close(self) -> None:
        if self.client is not None:
            self.client.set_terminated(self.run_id, "FINISHED")
            self.client = None


def build_mlflow(experiment: str = "cgx", run_name: Optional[str] = None,
                 tracking_uri: Optional[str] = None) -> MlflowLogger:
    """``experiment``: the MLflow experiment (created if needed); ``run_name``: the run's name (default:
    the run folder's name); ``tracking_uri``: where to log (default: ``MLFLOW_TRACKING_URI``, else the
    local store in ``RUN/mlflow``)."""
    require("mlflow", extra="mlflow", what="logger mlflow")
    return MlflowLogger(experiment, run_name, tracking_uri)


@hookimpl
def cgx_register_loggers(register):
    register("mlflow", build_mlflow)
