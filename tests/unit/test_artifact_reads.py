"""How often a backup file is read: in full at a run's start, by size and time at approval."""

import dataclasses
import os

from actions.artifacts import artifact_problem, record_artifact

DUMP = "backup/db_backup_20240101_120000.sql"


def recorded_with_mtime(tmp_path, text="create table orders (id int);\n"):
    path = tmp_path / DUMP
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    recorded = record_artifact("db_dump", kind="file", rendered_path_or_value=DUMP,
                               workdir=tmp_path)  # fmt: skip
    return path, dataclasses.replace(recorded, mtime=path.stat().st_mtime)


def test_an_untouched_file_passes_both_checks(tmp_path):
    _, recorded = recorded_with_mtime(tmp_path)
    assert artifact_problem(recorded, tmp_path, full=False) is None
    assert artifact_problem(recorded, tmp_path) is None


def test_same_size_and_time_is_not_read_at_approval_but_is_at_the_start(tmp_path):
    path, recorded = recorded_with_mtime(tmp_path)
    stat = path.stat()
    path.write_text("create table orders (id INT);\n")  # same size, other bytes
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the old modification time
    assert artifact_problem(recorded, tmp_path, full=False) is None  # not read: size + time
    problem = artifact_problem(recorded, tmp_path)  # the run's start reads it in full
    assert problem is not None and "sha256 differs" in problem


def test_another_size_refuses_without_reading(tmp_path):
    path, recorded = recorded_with_mtime(tmp_path)
    path.write_text("tampered\n")
    problem = artifact_problem(recorded, tmp_path, full=False)
    assert problem is not None and "size 9 bytes" in problem


def test_another_time_falls_back_to_the_full_comparison(tmp_path):
    path, recorded = recorded_with_mtime(tmp_path)
    os.utime(path, (1_000_000_000, 1_000_000_000))  # touched: the bytes are the same
    assert artifact_problem(recorded, tmp_path, full=False) is None
    stat = path.stat()
    path.write_text("create table orders (id INT);\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000))
    problem = artifact_problem(recorded, tmp_path, full=False)
    assert problem is not None and "sha256 differs" in problem


def test_an_unknown_time_is_always_compared_in_full(tmp_path):
    path, recorded = recorded_with_mtime(tmp_path)
    stat = path.stat()
    path.write_text("create table orders (id INT);\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    problem = artifact_problem(dataclasses.replace(recorded, mtime=None), tmp_path, full=False)
    assert problem is not None and "sha256 differs" in problem


def test_a_missing_file_refuses_in_both(tmp_path):
    path, recorded = recorded_with_mtime(tmp_path)
    path.unlink()
    assert artifact_problem(recorded, tmp_path, full=False) == f"backup file {DUMP} is missing"
