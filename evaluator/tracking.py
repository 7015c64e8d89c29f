"""Experiment tracking in MLflow (the `mlflow` extra): one run per assessed model, with its settings as params, its
table row's numbers as metrics, its JSON report and card as artifacts; a sweep adds one parent run that nests a run
per variant.

The tracking URI is checked before any work (`tracking_target`: a known scheme, a local store that can be made, a
server that answers) and nothing is written until the results exist (`log_runs`). mlflow is imported only there:
importing this module, the results or the renderers never loads it.

Metric names are the table's columns with the budget's `@` made `_` (MLflow allows letters, digits, `_ - . / `
and spaces): `robust_accuracy_Linf_0.03137` is robust accuracy against Linf budget 0.03137 (pixel units). Units as in
TableRow: accuracies are shares in [0, 1], latencies in ms, throughput in samples per second, sizes in bytes.
"""

from __future__ import annotations

import importlib.util
import os
import re
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence
from urllib.parse import urlparse

from evaluator.errors import EvaluatorError, first_line
from evaluator.files import json_text
from evaluator.results import Assessment, TableRow

if TYPE_CHECKING:
    from mlflow import MlflowClient

FIELD = "mlflow"  # the setting errors name (the CLI shows --mlflow)
INSTALL = "pip install 'evaluator[mlflow]'"
DEFAULT_EXPERIMENT = "evaluator"
SERVER_SCHEMES = ("http", "https")
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")  # SQLAlchemy stores; a driver may follow: postgresql+psycopg2
HEALTH_TIMEOUT_S = 5.0  # seconds a tracking server has to answer GET /health before the work starts
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")  # RFC 3986
ALLOW_FILE_STORE = "MLFLOW_ALLOW_FILE_STORE"  # MLflow 3 refuses a folder store unless this is true
# The assessment settings every model's run carries as params (AssessConfig / SweepConfig keys).
SETTING_PARAMS = ("attacks", "seed", "samples", "provider", "epsilons", "epsilons_l2", "epsilons_l1", "epsilons_l0",
                  "cascade", "dataset")
# TableRow fields logged as metrics (None: not logged); robust accuracy and median distance are added per budget / norm.
ROW_METRICS = ("clean_accuracy", "accuracy_drop", "attacked_clean_accuracy", "latency_p50_ms", "latency_p99_ms",
               "throughput_per_s", "size_bytes", "gzip_bytes", "params", "nonzero_params", "macs", "achieved_rate",
               "float_accuracy_drop", "speedup_vs_float", "fallback_kernels")


@dataclass(frozen=True)
class TrackingTarget:
    """Where runs go: an MLflow tracking URI (a local folder as an absolute file: URI) and the experiment's name."""

    uri: str
    experiment: str = DEFAULT_EXPERIMENT

    @property
    def is_folder(self) -> bool:
        return self.uri.startswith("file:")


@dataclass(frozen=True)
class RunRecord:
    """One MLflow run to log: params and tags as text, metrics as numbers, artifacts as (file, artifact folder) pairs
    ("" for the run's root)."""

    name: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: tuple[tuple[Path, str], ...] = ()


def tracking_target(uri: str, experiment: str = DEFAULT_EXPERIMENT) -> TrackingTarget:
    """The checked target of `uri`: a folder (a plain path or file:PATH), sqlite:///PATH.db or another SQLAlchemy
    database URI, or an http(s):// tracking server. Refuses (EvaluatorError, field "mlflow") a missing mlflow package,
    a malformed URI or unknown scheme, a folder store where a file stands, a database store without its packages and
    a server that does not answer within HEALTH_TIMEOUT_S seconds. Writes nothing."""
    if importlib.util.find_spec("mlflow") is None:
        raise EvaluatorError(f"{FIELD} needs MLflow, which is not installed: {INSTALL}", field=FIELD)
    if not experiment.strip():
        raise EvaluatorError("mlflow_experiment must name an experiment, got an empty name", field="mlflow_experiment")
    text = uri.strip()
    if not text or any(not character.isprintable() for character in text):
        raise EvaluatorError(f"{FIELD} URI {uri!r} is empty or holds control characters", field=FIELD)
    if ":" not in text:
        return TrackingTarget(folder_uri(text, uri), experiment)
    scheme = text.split(":", 1)[0]
    if not SCHEME.fullmatch(scheme):
        raise EvaluatorError(f"{FIELD} URI {uri!r} is malformed: expected a folder, file:PATH, sqlite:///PATH.db or "
                             "http(s)://HOST:PORT", field=FIELD)
    scheme = scheme.lower()
    parsed = urlparse(text)
    if scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise EvaluatorError(f"{FIELD} URI {uri!r} names host {parsed.netloc!r}: a file: store is a local folder", field=FIELD)
        return TrackingTarget(folder_uri(parsed.path, uri), experiment)
    if scheme in SERVER_SCHEMES:
        if not parsed.hostname:
            raise EvaluatorError(f"{FIELD} URI {uri!r} names no host: expected {scheme}://HOST:PORT", field=FIELD)
        check_server(text.rstrip("/"))
        return TrackingTarget(text.rstrip("/"), experiment)
    if scheme.split("+")[0] in DATABASE_SCHEMES:
        check_database(text, scheme.split("+")[0])
        return TrackingTarget(text, experiment)
    raise EvaluatorError(f"{FIELD} URI {uri!r} has an unknown scheme {scheme!r}: expected a folder, file:PATH, "
                         "sqlite:///PATH.db or http(s)://HOST:PORT", field=FIELD)


def folder_uri(path: str, uri: str) -> str:
    """The absolute file: URI of a folder store, checked: an MLflow store, an empty folder or none yet (no file at it
    or above it), and the nearest existing folder writable (MLflow makes the rest when it logs)."""
    if not path.strip():
        raise EvaluatorError(f"{FIELD} URI {uri!r} names no folder", field=FIELD)
    folder = Path(path).expanduser().absolute()
    if folder.is_dir() and not is_folder_store(folder):
        raise EvaluatorError(f"{FIELD} store {folder} is a folder of other files, not an MLflow store: name a new or "
                             "empty folder", field=FIELD)
    for existing in (folder, *folder.parents):
        if existing.is_dir():
            if not os.access(existing, os.W_OK | os.X_OK):
                raise EvaluatorError(f"{FIELD} store {folder}: {existing} is not writable", field=FIELD)
            return folder.as_uri()
        if existing.exists() or existing.is_symlink():
            where = "is a file" if existing == folder else f"lies inside the file {existing}"
            raise EvaluatorError(f"{FIELD} store {folder} {where}: a folder store needs a folder", field=FIELD)
    return folder.as_uri()


def is_folder_store(folder: Path) -> bool:
    """Whether an existing folder is empty or an MLflow folder store (its .trash, or experiments with a meta.yaml)."""
    entries = list(folder.iterdir())
    return not entries or (folder / ".trash").is_dir() or any((entry / "meta.yaml").is_file() for entry in entries)


def check_server(uri: str) -> None:
    """A tracking server answers GET URI/health within HEALTH_TIMEOUT_S seconds (any HTTP status: it is there)."""
    import ssl
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=HEALTH_TIMEOUT_S):
            pass
    except urllib.error.HTTPError:
        return  # it answered (a proxy may guard /health); logging reports what it refuses
    except (OSError, ValueError) as error:  # URLError, a refused connection, a timeout, a bad port
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        if isinstance(reason, ssl.SSLError):
            return  # it answered; whether its certificate is trusted is MLflow's to decide (MLFLOW_TRACKING_INSECURE_TLS)
        raise EvaluatorError(f"{FIELD} server {uri} is unreachable: {reason}", field=FIELD) from None


def check_database(uri: str, dialect: str) -> None:
    """A database store has SQLAlchemy and Alembic (the full `mlflow` package brings them); sqlite's file lies in an
    existing folder and is not itself a folder."""
    missing = [name for name in ("sqlalchemy", "alembic") if importlib.util.find_spec(name) is None]
    if missing:
        raise EvaluatorError(f"{FIELD} database store {uri} needs {' and '.join(missing)}: pip install mlflow (or use "
                             "a folder store)", field=FIELD)
    if dialect != "sqlite":
        return
    path = urlparse(uri).path
    database = Path(path[1:] if path.startswith("/") else path)  # sqlite:///rel.db, sqlite:////abs.db
    if not database.parent.is_dir() or database.is_dir():
        raise EvaluatorError(f"{FIELD} database {database}: its folder must exist and it must be a file", field=FIELD)


def metric_name(text: str) -> str:
    """A table column or budget key as an MLflow metric name: characters MLflow refuses become `_`."""
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", text)


def row_metrics(row: TableRow) -> dict[str, float]:
    """The numbers of one table row (units as in TableRow); robust accuracy per budget (`robust_accuracy_Linf_0.03137`)
    and median minimal distance per norm (`median_distance_L2`); values that are None are left out."""
    values: dict[str, Any] = {name: getattr(row, name) for name in ROW_METRICS}
    values |= {metric_name(f"robust_accuracy_{key}"): value for key, value in row.robust_accuracy.items()}
    values |= {metric_name(f"median_distance_{norm}"): value for norm, value in row.median_distance.items()}
    return {name: float(value) for name, value in values.items() if value is not None}


def param_text(value: Any) -> str:
    """A setting as an MLflow param: lists comma separated, None as 'none', booleans lower case."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(param_text(item) for item in value)
    return str(value)


def params_of(settings: Mapping[str, Any], names: Sequence[str] | None = None) -> dict[str, str]:
    """The settings (all, or those named that are there) as MLflow params."""
    return {name: param_text(settings[name]) for name in (names if names is not None else list(settings)) if name in settings}


def model_record(row: TableRow, settings: Mapping[str, Any], environment: Mapping[str, Any],
                 metadata: Mapping[str, Any] | None, artifacts: Sequence[tuple[Path, str]]) -> RunRecord:
    """The run of one model: params method, rate (the target compression rate), precision and the assessment
    settings; its row's metrics; tags sha256, parent and parent_sha256 (from the model's metadata), provider, dataset
    and the evaluator's version; the artifacts given that exist."""
    parent = (metadata or {}).get("parent") or {}
    tags = {"sha256": row.sha256, "parent": parent.get("file") or "none", "parent_sha256": parent.get("sha256") or "none",
            "provider": row.provider, "evaluator_version": str(environment.get("evaluator", "unknown")), "variant": row.variant}
    if "dataset" in settings:
        tags["dataset"] = str(settings["dataset"])
    params = {"method": row.method, "rate": param_text(row.target_rate), "precision": row.precision,
              **params_of(settings, SETTING_PARAMS)}
    return RunRecord(row.variant, params, row_metrics(row), tags, existing(artifacts))


def existing(artifacts: Sequence[tuple[Path, str]]) -> tuple[tuple[Path, str], ...]:
    return tuple((path, folder) for path, folder in artifacts if path.is_file())


def log_assessment(target: TrackingTarget, assessment: Assessment) -> list[str]:
    """One run per model of an assessment (no parent run): its JSON report (the assessment of that model alone, as
    `assessment.json`) and its card (the .json beside the .onnx, when there is one) as artifacts. The run ids."""
    from evaluator.table import table_row

    settings = assessment.config.to_dict()
    with tempfile.TemporaryDirectory(prefix="evaluator-mlflow-") as folder:
        records = []
        for index, model in enumerate(assessment.models):
            report = Path(folder) / str(index) / "assessment.json"
            report.parent.mkdir()
            report.write_text(json_text(replace(assessment, models=(model,)).to_dict()) + "\n")
            card = Path(model.path).with_suffix(".json")
            records.append(model_record(table_row(model), {**settings, "dataset": model.dataset}, assessment.environment,
                                        model.metadata, [(report, ""), (card, "card")]))
        return log_runs(target, records)


def log_runs(target: TrackingTarget, children: Sequence[RunRecord], parent: RunRecord | None = None) -> list[str]:
    """The runs in the target's experiment (made if missing), each child nested under `parent` when given (MLflow's
    mlflow.parentRunId tag). The run ids, parent first. A failure marks the run FAILED and raises EvaluatorError."""
    try:
        with client_of(target) as client:
            experiment = experiment_id(client, target.experiment)
            parent_id = log_run(client, experiment, parent, None) if parent is not None else None
            ids = [log_run(client, experiment, child, parent_id) for child in children]
            return ([parent_id] if parent_id else []) + ids
    except EvaluatorError:
        raise
    except Exception as error:  # MlflowException, OSError, requests' errors: the library's own words, one line
        raise EvaluatorError(f"{FIELD} logging to {target.uri} failed: {first_line(error)}", field=FIELD) from None


@contextmanager
def client_of(target: TrackingTarget) -> Iterator[MlflowClient]:
    """An MlflowClient of the target (no global MLflow state is touched); a folder store allowed while it is used."""
    from mlflow import MlflowClient

    previous = os.environ.get(ALLOW_FILE_STORE)
    if target.is_folder:
        os.environ[ALLOW_FILE_STORE] = "true"  # the user named a folder: MLflow 3 would refuse it otherwise
    try:
        yield MlflowClient(tracking_uri=target.uri)
    finally:
        if target.is_folder:
            if previous is None:
                os.environ.pop(ALLOW_FILE_STORE, None)
            else:
                os.environ[ALLOW_FILE_STORE] = previous


def experiment_id(client: MlflowClient, name: str) -> str:
    """The id of the experiment `name`, made when missing; EvaluatorError when it is deleted."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return client.create_experiment(name)
    if experiment.lifecycle_stage != "active":
        raise EvaluatorError(f"mlflow_experiment {name!r} is deleted: restore it or name another", field="mlflow_experiment")
    return experiment.experiment_id


def log_run(client: MlflowClient, experiment: str, record: RunRecord, parent_id: str | None) -> str:
    """One finished run of `record`; a failure part-way marks it FAILED before the error goes on."""
    from mlflow.entities import Metric, Param

    tags = {**record.tags, **({"mlflow.parentRunId": parent_id} if parent_id else {})}
    run = client.create_run(experiment, run_name=record.name, tags=tags)
    run_id = run.info.run_id
    try:
        now = int(time.time() * 1000)  # ms
        client.log_batch(run_id, metrics=[Metric(name, value, now, 0) for name, value in record.metrics.items()],
                         params=[Param(name, value) for name, value in record.params.items()])
        for path, folder in record.artifacts:
            client.log_artifact(run_id, str(path), folder or None)
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return run_id
