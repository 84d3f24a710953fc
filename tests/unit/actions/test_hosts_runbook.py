"""`[hosts.NAME]` tables and `host` / `hosts` on steps and checks: each mistake at its line."""

from pathlib import Path

import pytest

from actions.model import Host
from actions.runbook import Problem, check_runbook, load_runbook

# Line numbers below refer to this text: keep it as it is.
BASE = """\
[project]
name = "Shop"
workdir = "app"

[hosts.db]
address = "10.0.0.9"
user = "deploy"
known_hosts = "known_hosts"

[hosts.app1]
address = "10.0.0.5"
user = "deploy"
port = 2222
identity = "id_ed25519"
known_hosts = "known_hosts"
jump = "db"

[backup]
  [[backup.step]]
  name = "Database backup"
  host = "db"
  run = "pg_dump shop > {{ artifact }}"
  artifact = { name = "db_dump", path = "backup/db.sql" }

[[scenario]]
key = "database"
title = "Database migration failure"
  [[scenario.step]]
  name = "Restart"
  hosts = ["app1", "db"]
  run = "pm2 restart all"

[[verify.check]]
name = "Build"
run = "npm run build"
host = "app1"
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "known_hosts").write_text("", encoding="utf-8")
    (tmp_path / "id_ed25519").write_text("", encoding="utf-8")
    path = tmp_path / "runbook.toml"
    path.write_text(text, encoding="utf-8")
    return path


def variant(old: str, new: str) -> str:
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


def only_problem(tmp_path: Path, text: str) -> Problem:
    problems = check_runbook(write(tmp_path, text))
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


def test_hosts_and_their_use_load_into_the_model(tmp_path):
    runbook = load_runbook(write(tmp_path, BASE))
    assert runbook.hosts["db"] == Host(
        name="db", address="10.0.0.9", user="deploy", known_hosts=tmp_path / "known_hosts", line=5
    )
    app1 = runbook.hosts["app1"]
    assert (app1.port, app1.identity, app1.jump) == (2222, tmp_path / "id_ed25519", "db")
    assert runbook.backup_steps[0].hosts == ("db",)
    assert runbook.scenarios[0].steps[0].hosts == ("app1", "db")
    assert runbook.checks[0].hosts == ("app1",)


def test_a_runbook_without_hosts_runs_everything_locally(tmp_path):
    text = "[project]\nname = 'x'\nworkdir = '.'\n[[scenario]]\nkey = 'k'\ntitle = 't'\n"
    text += "[[scenario.step]]\nname = 's'\nrun = 'true'\n"
    runbook = load_runbook(write(tmp_path, text))
    assert runbook.hosts == {} and runbook.scenarios[0].steps[0].hosts == ()


@pytest.mark.parametrize(
    ("old", "new", "line", "expected"),
    [
        ('  host = "db"\n', '  host = "dbx"\n', 21, "host: 'dbx' is not a host (known: app1, db)"),
        ('["app1", "db"]', '["app1", "web"]', 30, "hosts: 'web' is not a host"),
        ('["app1", "db"]', '["app1", "app1"]', 30, "hosts: 'app1' is named twice"),
        ('["app1", "db"]', "[]", 30, "hosts must name at least one host"),
        ('["app1", "db"]', '"app1"', 30, "hosts must be a list of strings"),
        ('  host = "db"\n', '  host = "db"\n  hosts = ["db"]\n', 22, "either host or hosts"),
        ("port = 2222", "port = 70000", 13, "port must be a number from 1 to 65535, not 70000"),
        ("port = 2222", 'port = "22"', 13, "port must be a number from 1 to 65535"),
        ("port = 2222", "port = true", 13, "port must be a number from 1 to 65535"),
        ('jump = "db"', 'jump = "bastion"', 16, "jump 'bastion' is not a host (known: app1, db)"),
        ('jump = "db"', 'jump = "app1"', 16, "a host cannot jump through itself"),
        ('address = "10.0.0.9"\n', "", 5, "[hosts.db]: missing required key 'address'"),
        ('user = "deploy"\nport', "port", 10, "[hosts.app1]: missing required key 'user'"),
        ('known_hosts = "known_hosts"\n\n[hosts.app1]', "\n[hosts.app1]", 5,
         "[hosts.db]: missing required key 'known_hosts'"),
        ('port = 2222\n', 'port = 2222\npassword = "x"\n', 14, "unknown key 'password'"),
        ("[[verify.check]]\nname = \"Build\"\nrun = \"npm run build\"",
         "[[verify.check]]\nname = \"Build\"\nhttp = \"http://x/\"", 36,
         "a http check connects by URL and takes no host; remove it"),
    ],
)  # fmt: skip
def test_each_host_mistake_is_reported_at_its_line(tmp_path, old, new, line, expected):
    problem = only_problem(tmp_path, variant(old, new))
    assert (problem.line, expected in problem.message) == (line, True), str(problem)


def test_a_sql_check_takes_no_hosts(tmp_path):
    text = variant('run = "npm run build"\nhost = "app1"', 'sql = "select 1"\nhosts = ["app1"]')
    problem = only_problem(tmp_path, text)
    assert problem.line == 36
    assert "a sql check connects by DSN and takes no hosts; remove it" in problem.message


def test_a_missing_known_hosts_file_says_how_to_create_it(tmp_path):
    old = 'known_hosts = "known_hosts"\n\n[hosts.app1]'
    text = variant(old, old.replace('"known_hosts"\n', '"nope"\n'))
    problem = only_problem(tmp_path, text)
    assert problem.line == 8
    assert f"known_hosts file {tmp_path / 'nope'} does not exist" in problem.message
    assert "ssh-keyscan -p PORT ADDRESS >> FILE" in problem.message


def test_a_missing_identity_file_is_reported(tmp_path):
    problem = only_problem(tmp_path, variant('identity = "id_ed25519"', 'identity = "gone"'))
    assert problem.line == 14 and "identity file" in problem.message


def test_a_jump_loop_is_reported_at_each_host_on_it(tmp_path):
    text = variant('known_hosts = "known_hosts"\n\n[hosts.app1]',
                   'known_hosts = "known_hosts"\njump = "app1"\n\n[hosts.app1]')  # fmt: skip
    problems = check_runbook(write(tmp_path, text))
    assert [(p.line, p.message.split(": ", 1)[1]) for p in problems] == [
        (9, "jump loop: db -> app1 -> db"),
        (17, "jump loop: app1 -> db -> app1"),
    ]


def test_a_backup_step_with_a_file_artifact_names_one_host(tmp_path):
    problem = only_problem(tmp_path, variant('  host = "db"\n', '  hosts = ["db", "app1"]\n'))
    assert problem.line == 21
    assert "a backup step with a file artifact runs on one host" in problem.message


def test_a_host_table_that_is_not_a_table(tmp_path):
    text = BASE.replace('[hosts.db]\naddress = "10.0.0.9"\nuser = "deploy"\n'
                        'known_hosts = "known_hosts"\n', "[hosts]\ndb = 'x'\n")  # fmt: skip
    text = text.replace('jump = "db"\n', "").replace('host = "db"', 'host = "app1"')
    text = text.replace('["app1", "db"]', '["app1"]')
    problem = only_problem(tmp_path, text)
    assert problem.line == 6 and "hosts.db must be a [hosts.db] table" in problem.message


def test_the_readme_hosts_example_is_a_valid_runbook(tmp_path):
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme.split("### Steps on other machines", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "ssh").mkdir()
    (tmp_path / "ssh" / "known_hosts").write_text("")
    (tmp_path / "ssh" / "id_ed25519").write_text("")
    path = tmp_path / "runbook.toml"
    path.write_text('[project]\nname = "x"\nworkdir = "/srv/ecom_os"\n[vars]\ndb_name = "e"\n'
                    + example)  # fmt: skip
    runbook = load_runbook(path)
    assert [s.hosts for s in runbook.scenarios[0].steps] == [
        ("app1", "app2"),
        ("db",),
        ("app1", "app2"),
    ]
    assert runbook.backup_steps[0].hosts == ("db",) and runbook.checks[0].hosts == ("app1", "app2")
