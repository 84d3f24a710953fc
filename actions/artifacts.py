"""Backup artifacts: record what a backup step left behind, and tell whether it is still intact."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ArtifactKind = Literal["file", "value"]
_CHUNK = 1024 * 1024


class ArtifactError(Exception):
    """A backup step claimed success but its artifact is unusable; the message says why."""


@dataclass(frozen=True)
class RecordedArtifact:
    """An artifact as stored with a backup run: a file with its size and sha256, or a value."""

    name: str
    kind: ArtifactKind
    path: str | None = None  # as written in the runbook, rendered; relative to the workdir
    value: str | None = None
    size: int | None = None
    sha256: str | None = None
    mtime: float | None = None  # st_mtime when recorded (as stored); None: unknown

    @property
    def reference(self) -> str:
        """What `{{ backup.NAME }}` stands for: the file's path or the value."""
        return (self.path if self.kind == "file" else self.value) or ""


def file_digest(path: str | Path) -> tuple[int, str]:
    """The file's size in bytes and sha256 hex digest, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            size += len(chunk)
            digest.update(chunk)
    return size, digest.hexdigest()


def artifact_file(path: str, workdir: Path) -> Path:
    """Where a recorded path points: relative paths are taken from the workdir."""
    return Path(workdir) / path


def record_artifact(
    artifact_name: str, *, kind: ArtifactKind, rendered_path_or_value: str, workdir: Path
) -> RecordedArtifact:
    """Record an artifact after its step succeeded; raises ArtifactError if the file is unusable."""
    if kind == "value":
        return RecordedArtifact(artifact_name, "value", value=rendered_path_or_value)
    if kind != "file":
        raise ValueError(f"artifact kind must be 'file' or 'value', not {kind!r}")
    path = rendered_path_or_value
    problem = _file_problem(path, artifact_file(path, workdir))
    if problem is None and artifact_file(path, workdir).stat().st_size == 0:
        problem = f"backup file {path} is empty: the step produced nothing to restore from"
    if problem is not None:
        raise ArtifactError(problem + " after its step finished")
    try:
        size, sha256 = file_digest(artifact_file(path, workdir))
    except OSError as exc:
        raise ArtifactError(f"backup file {path} cannot be read: {exc.strerror or exc}") from exc
    return RecordedArtifact(artifact_name, "file", path=path, size=size, sha256=sha256)


def artifact_problem(recorded: RecordedArtifact, workdir: Path, *, full: bool = True) -> str | None:
    """None when the artifact can still be used for a restore, else a sentence saying why not.

    `full`: read the whole file and compare its sha256 (what a run's start does, right before
    its steps restore from it). Without it (an approval request, a click), a file whose size
    and modification time are as recorded passes without being read; a different size
    refuses; a different modification time falls back to the full comparison.
    """
    if recorded.kind != "file" or recorded.path is None:
        return None
    path = recorded.path
    problem = _file_problem(path, artifact_file(path, workdir))
    if problem is not None:
        return problem
    untrusted = "it cannot be trusted for a restore"
    if not full and recorded.mtime is not None:
        try:
            stat = artifact_file(path, workdir).stat()
        except OSError as exc:
            return f"backup file {path} cannot be read ({exc.strerror or exc}): {untrusted}"
        if stat.st_size == recorded.size and abs(stat.st_mtime - recorded.mtime) <= 1e-3:
            return None  # unchanged by size and time; the run's start reads it in full
    try:
        size, sha256 = file_digest(artifact_file(path, workdir))
    except OSError as exc:
        return f"backup file {path} cannot be read ({exc.strerror or exc}): {untrusted}"
    if size != recorded.size:
        return (
            f"backup file {path} has changed since the backup "
            f"(size {size} bytes, was {recorded.size}): {untrusted}"
        )
    if sha256 != recorded.sha256:
        return f"backup file {path} has changed since the backup (sha256 differs): {untrusted}"
    return None


def _file_problem(path: str, file: Path) -> str | None:
    if not file.exists():
        return f"backup file {path} is missing"
    if not file.is_file():
        return f"backup file {path} is not a regular file (archive a directory with tar)"
    return None
