import hashlib

import pytest

from actions.artifacts import (
    ArtifactError,
    RecordedArtifact,
    artifact_problem,
    file_digest,
    record_artifact,
)

DUMP = "backup/db_backup_20240101_120000.sql"


@pytest.fixture
def dump(tmp_path):
    path = tmp_path / DUMP
    path.parent.mkdir()
    path.write_text("create table orders (id int);\n")
    return path


def test_file_digest_streams_size_and_sha256(tmp_path):
    data = b"x" * (3 * 1024 * 1024 + 17)
    (tmp_path / "big").write_bytes(data)
    assert file_digest(tmp_path / "big") == (len(data), hashlib.sha256(data).hexdigest())


def test_file_artifact_is_recorded_with_its_path_as_written(tmp_path, dump):
    recorded = record_artifact(
        "db_dump", kind="file", rendered_path_or_value=DUMP, workdir=tmp_path
    )
    content = dump.read_bytes()
    assert recorded == RecordedArtifact(
        name="db_dump",
        kind="file",
        path=DUMP,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
    )
    assert recorded.reference == DUMP


def test_absolute_paths_are_kept(tmp_path, dump):
    recorded = record_artifact(
        "db_dump", kind="file", rendered_path_or_value=str(dump), workdir=tmp_path / "elsewhere"
    )
    assert recorded.path == str(dump)
    assert artifact_problem(recorded, tmp_path / "elsewhere") is None


def test_value_artifact_is_recorded_as_is(tmp_path):
    branch = "backup/pre-wms-integration-20240101_120000"
    recorded = record_artifact(
        "code_branch", kind="value", rendered_path_or_value=branch, workdir=tmp_path
    )
    assert recorded == RecordedArtifact(name="code_branch", kind="value", value=branch)
    assert recorded.reference == branch
    assert artifact_problem(recorded, tmp_path) is None


def test_successful_step_without_its_file_is_a_failed_backup(tmp_path):
    with pytest.raises(ArtifactError, match=f"backup file {DUMP} is missing after its step"):
        record_artifact("db_dump", kind="file", rendered_path_or_value=DUMP, workdir=tmp_path)


def test_empty_backup_file_is_refused(tmp_path, dump):
    dump.write_bytes(b"")
    with pytest.raises(ArtifactError, match="is empty"):
        record_artifact("db_dump", kind="file", rendered_path_or_value=DUMP, workdir=tmp_path)


def test_directory_is_not_a_file_artifact(tmp_path):
    (tmp_path / "backup").mkdir()
    with pytest.raises(ArtifactError, match="not a regular file"):
        record_artifact("db_dump", kind="file", rendered_path_or_value="backup", workdir=tmp_path)


def test_intact_backup_has_no_problem(tmp_path, dump):
    recorded = record_artifact(
        "db_dump", kind="file", rendered_path_or_value=DUMP, workdir=tmp_path
    )
    assert artifact_problem(recorded, tmp_path) is None


def test_deleted_backup_is_reported_missing(tmp_path, dump):
    recorded = record_artifact(
        "db_dump", kind="file", rendered_path_or_value=DUMP, workdir=tmp_path
    )
    dump.unlink()
    assert artifact_problem(recorded, tmp_path) == f"backup file {DUMP} is missing"


def test_backup_changed_in_place_cannot_be_trusted(tmp_path, dump):
    recorded = record_artifact(
        "db_dump", kind="file", rendered_path_or_value=DUMP, workdir=tmp_path
    )
    dump.write_text(dump.read_text().replace("orders", "ORDERS"))  # same size, other content
    assert artifact_problem(recorded, tmp_path) == (
        f"backup file {DUMP} has changed since the backup (sha256 differs): "
        "it cannot be trusted for a restore"
    )


def test_backup_with_another_size_cannot_be_trusted(tmp_path, dump):
    recorded = record_artifact(
        "db_dump", kind="file", rendered_path_or_value=DUMP, workdir=tmp_path
    )
    dump.write_text("truncated")
    problem = artifact_problem(recorded, tmp_path)
    assert problem is not None
    assert "has changed since the backup" in problem
    assert problem.endswith("it cannot be trusted for a restore")
