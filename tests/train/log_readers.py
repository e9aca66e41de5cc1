"""Read a run's logs back through each logger's own reader (imported by the logger tests; not a conftest).

Each reader gives the same shape, so the tests compare backends with one expectation:

    {"recipe": 1,                                   # times the recipe was logged
     "scalars": {"loss/D/A": [1, 2, 3], ...},       # each series' steps (a step held twice: twice)
     "images": {"A->B->A (...)": [2], ...},
     "events": {"checkpoint": [3], "best": [3]},
     "fields": {"checkpoint": {"path": "..."}, ...}}  # the last event's fields
MLflow's keys are the tags as ``mlflow_log.key_name`` makes them.
"""
from __future__ import annotations

import json
import struct
from collections import defaultdict
from pathlib import Path

EVENT_PREFIXES = ("checkpoint/", "best/")


def read(backend: str, run: Path, **kwargs) -> dict:
    return {"tensorboard": read_tensorboard, "jsonl": read_jsonl, "wandb": read_wandb,
            "mlflow": read_mlflow}[backend](run, **kwargs)


def _shape() -> dict:
    return {"recipe": 0, "scalars": defaultdict(list), "images": defaultdict(list), "events": defaultdict(list),
            "fields": {}}


def _plain(out: dict) -> dict:
    return {k: dict(v) if isinstance(v, defaultdict) else v for k, v in out.items()}


def read_tensorboard(run: Path) -> dict:
    """What TensorBoard shows: its data loader (``plugin_event_accumulator``), which applies purges."""
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"), size_guidance={"tensors": 0}).Reload()
    out = _shape()
    for tag in acc.Tags()["tensors"]:
        plugin = acc.SummaryMetadata(tag).plugin_data.plugin_name
        steps = [e.step for e in acc.Tensors(tag)]
        if tag == "recipe/text_summary":
            out["recipe"] = len(steps)
        elif tag.startswith("events/"):
            name = tag[len("events/"):-len("/text_summary")]
            out["events"][name] = steps
            text = acc.Tensors(tag)[-1].tensor_proto.string_val[0].decode()
            out["fields"][name] = dict(item.split(": ", 1) for item in text.split(", "))
        elif plugin == "images":
            out["images"][tag] = steps
        elif not tag.startswith(EVENT_PREFIXES):
            out["scalars"][tag] = steps
    return _plain(out)


def read_jsonl(run: Path) -> dict:
    out = _shape()
    for line in (run / "log.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["kind"] == "recipe":
            out["recipe"] += 1
        elif r["kind"] == "scalars":
            for tag in r["values"]:
                out["scalars"][tag].append(r["step"])
        elif r["kind"] == "image":
            assert (run / r["file"]).is_file(), r
            out["images"][r["tag"]].append(r["step"])
        elif r["kind"] == "event":
            out["events"][r["event"]].append(r["step"])
            out["fields"][r["event"]] = r["fields"]
    return _plain(out)


# --- W&B: the offline run files (RUN/wandb/offline-run-*/run-*.wandb) ---------------------------------

BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def wandb_records(path: Path):
    """The protobuf records of one W&B transaction log (W&B's LevelDB-style log: a 7-byte file header
    ``:W&B`` + magic + version, then 32 KiB blocks of chunks, each with a 7-byte header: CRC32,
    length, type)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", path
    pos, buf = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # the rest of a block too short for a header is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        chunk = data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind == 0:
            break
        buf = chunk if kind in (FULL, FIRST) else buf + chunk
        if kind in (FULL, LAST):
            record = pb.Record()
            record.ParseFromString(buf)
            yield record


def read_wandb(run: Path) -> dict:
    """Every offline run file of the run, in order (one per launch, all with the run's one id)."""
    out = _shape()
    files = sorted((run / "wandb").glob("offline-run-*/run-*.wandb"), key=lambda p: p.parent.name)
    out["ids"] = sorted({p.stem[len("run-"):] for p in files})
    out["launches"] = len(files)
    for path in files:
        for record in wandb_records(path):
            kind = record.WhichOneof("record_type")
            # the recipe is the run's config: in a config record, or in the run record when W&B folds it in
            config = record.config if kind == "config" else record.run.config if kind == "run" else None
            if config is not None and any(i.key == "train" for i in config.update):
                out["recipe"] += 1
            if kind != "history":
                continue
            step = record.history.step.num
            items = {}
            for item in record.history.item:
                key = item.key or "/".join(item.nested_key)
                items[key] = json.loads(item.value_json)
            images = {k[:-len("/_type")] for k, v in items.items() if k.endswith("/_type") and v == "image-file"}
            for image in images:
                out["images"][image].append(step)
            for key, value in items.items():
                if key.startswith("_") or any(key.startswith(i + "/") for i in images):
                    continue
                name, _, field = key.partition("/")
                if key.startswith(EVENT_PREFIXES):
                    if name not in out["fields"] or out["events"][name][-1:] != [step]:
                        out["events"][name].append(step)
                        out["fields"][name] = {}
                    out["fields"][name][field] = value
                else:
                    out["scalars"][key].append(step)
    return _plain(out)


# --- MLflow: through MlflowClient ------------------------------------------------------------------------


def read_mlflow(run: Path, uri: str | None = None) -> dict:
    from mlflow import MlflowClient

    record = json.loads((run / "mlflow" / "cgx-run.json").read_text())
    client = MlflowClient(tracking_uri=uri or record["uri"])
    info = client.get_run(record["id"])
    out = _shape()
    out["runs"] = len(client.search_runs([info.info.experiment_id]))
    out["status"] = info.info.status
    copies = sum(a.path == "recipe.yaml" for a in client.list_artifacts(record["id"]))
    out["recipe"] = copies if "train.steps" in info.data.params else 0  # parameters, and recipe.yaml beside them
    for key in info.data.metrics:
        steps = sorted(m.step for m in client.get_metric_history(record["id"], key))
        name, _, field = key.partition("/")
        if key.startswith(EVENT_PREFIXES):
            if field == "step":
                out["events"][name] = steps
        else:
            out["scalars"][key] = steps
    for name in out["events"]:
        out["fields"][name] = {k.partition("/")[2]: v for k, v in info.data.tags.items() if k.startswith(name + "/")}
        out["fields"][name].update({k.partition("/")[2]: str(v) for k, v in info.data.metrics.items()
                                    if k.startswith(name + "/") and k != f"{name}/step"})
    for artifact in client.list_artifacts(record["id"], "images"):
        name = Path(artifact.path).name
        if name.endswith(".png") and "+step+" in name:
            key, _, rest = name.partition("+step+")
            out["images"][key.replace("~", "/")].append(int(rest.split("+")[0]))
    for steps in out["images"].values():
        steps.sort()
    return _plain(out)
