"""Read what an offline W&B run wrote, from its `run-<id>.wandb` transaction log, without W&B's reader.

The file is a LevelDB-style log (wandb's datastore): a 7-byte header `:W&B` + magic + version, then 32 KiB
blocks of records, each a 7-byte header (CRC-32C, length, type: full, first, middle, last) and a chunk; the
chunks of a record joined are one `wandb_internal_pb2.Record`.
"""

import json
import struct
import time
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path):
    """Every Record of a .wandb file, in order."""
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    pos, pending = HEADER, b""
    while pos + HEADER <= len(data):
        room = BLOCK - pos % BLOCK
        if room < HEADER:  # the tail of a block too short for a header is padding
            pos += room
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if kind == 0 and length == 0:
            pos += room
            continue
        if pos + HEADER + length > len(data):  # still being written
            return
        pending += data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def finished_records(path: Path, timeout: float = 60.0) -> list:
    """The records of a finished run: W&B's writer process may still be flushing when `wandb.finish()` has
    returned, so wait for the run's last record (`exit`)."""
    deadline = time.monotonic() + timeout
    while True:
        found = list(records(path))
        if any(r.WhichOneof("record_type") == "exit" for r in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


class OfflineRun:
    """The run id, history rows, summary, metric definitions and artifacts of one offline run folder;
    `stream` has the history rows and artifacts in the order they were written."""

    def __init__(self, folder: Path):
        (log,) = Path(folder).glob("run-*.wandb")
        self.folder, self.id, self.resumed, self.exit_code = Path(folder), None, False, None
        self.rows, self.summary, self.metrics, self.artifacts, self.stream = [], {}, [], [], []
        for record in finished_records(log):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                self.id, self.resumed = record.run.run_id, record.run.resume
            elif kind == "history":
                self.rows.append(_items(record.history.item))
                self.stream.append(("history", self.rows[-1]))
            elif kind == "exit":
                self.exit_code = record.exit.exit_code
            elif kind == "summary":
                self.summary.update(_items(record.summary.update))
            elif kind == "metric":
                self.metrics.append(record.metric)
            elif kind == "artifact":
                self.artifacts.append(record.artifact)
                self.stream.append(("artifact", record.artifact))

    def keys(self) -> set[str]:
        return {key for row in self.rows for key in row}

    def step_metric(self, name: str) -> str | None:
        """The x axis W&B plots `name` against: its own definition, else the last matching glob's."""
        found = None
        for metric in self.metrics:
            if metric.name == name or (metric.glob_name == "*" and not metric.name):
                found = metric.step_metric or found
        return found

    def models(self) -> list:
        return [artifact for artifact in self.artifacts if artifact.type == "model"]


def _items(items) -> dict:
    """History or summary items as {"a/b": value} (nested keys joined by /)."""
    return {"/".join(item.nested_key) if item.nested_key else item.key: json.loads(item.value_json) for item in items}


def offline_runs(run_folder: Path) -> list[OfflineRun]:
    """The offline W&B runs under a training run folder, oldest first."""
    return [OfflineRun(folder) for folder in sorted(Path(run_folder).glob("wandb/offline-run-*"))]
