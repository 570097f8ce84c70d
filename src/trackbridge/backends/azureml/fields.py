"""Run fields too long for an Azure ML tag, kept as files of the run.

Azure ML keeps tag values of at most 1,000 characters.  The MLflow backend keeps a
run's notes in ``mlflow.note.content`` and its summary values (W&B summary, Comet
others) as JSON in ``trackbridge.summary``; both easily pass 1,000 characters.
Where they do, the whole value goes to the run's artifact
``trackbridge/fields/<notes.md|summary.json>`` and the tag holds a pointer
(:data:`POINTER` + path).  The reader follows the pointer and hides the folder from
the run's artifacts: the files are this backend's storage of two fields, not
artifacts of the user's.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

#: tag value meaning "the value is in this artifact of the run".
POINTER = "trackbridge:artifact:"
FOLDER = "trackbridge/fields"
NOTES_FILE = f"{FOLDER}/notes.md"
SUMMARY_FILE = f"{FOLDER}/summary.json"


def pointer(path: str) -> str:
    return POINTER + path


def target(value: str | None) -> str | None:
    """The artifact path a tag value points to, or ``None`` for an ordinary value."""
    if value and value.startswith(POINTER):
        return value[len(POINTER):]
    return None


def hidden(path: str) -> bool:
    return path == FOLDER or path.startswith(FOLDER + "/")


def write_text(writer: object, run_id: str, path: str, text: str) -> None:
    """Upload ``text`` as the run's artifact ``path`` through ``writer.log_artifact``."""
    folder, _, name = path.rpartition("/")
    with tempfile.TemporaryDirectory(prefix="trackbridge-azureml-") as tmp:
        local = Path(tmp) / name
        local.write_text(text, encoding="utf-8")
        writer.log_artifact(run_id, local, folder)  # type: ignore[attr-defined]


def read_text(reader: object, run_id: str, path: str) -> str:
    with tempfile.TemporaryDirectory(prefix="trackbridge-azureml-") as tmp:
        local = reader.download_artifact(run_id, path, Path(tmp))  # type: ignore[attr-defined]
        return Path(local).read_text(encoding="utf-8")
