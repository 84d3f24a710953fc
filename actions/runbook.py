"""Load `runbook.toml` into frozen dataclasses, reporting every problem with its line."""

from __future__ import annotations

import os
import re
import tomllib
from operator import attrgetter
from pathlib import Path
from typing import Any

from actions.model import (
    DEFAULT_CHECK_TIMEOUT,
    DEFAULT_STEP_TIMEOUT,
    SEVERITIES,
    Artifact,
    Check,
    Policy,
    Runbook,
    Scenario,
    Step,
)
from actions.quoting import placeholder_problems, psql_warnings
from actions.render import template_problems
from actions.runbook_data import manifest_check_problems, read_compare_data, read_manifest_dsn
from actions.runbook_hosts import read_hosts, step_hosts
from actions.runbook_reader import (
    CHANNEL_ID,
    USER_ID,
    USER_OR_GROUP_ID,
    Problem,
    Reader,
    Table,
    kind_of,
)
from actions.toml_positions import KeyPath, key_lines

TOP_KEYS = ("project", "policy", "notify", "contacts", "vars", "backup", "scenario", "verify")
TOP_KEYS += ("checklists", "hosts")
PROJECT_KEYS = ("name", "workdir", "description")
POLICY_KEYS = ("high_rollback_after", "approval_expires_after", "approvers", "declarers")
POLICY_KEYS += ("postmortem_reminder_after", "approvals_required")
STEP_KEYS = ("name", "run", "timeout", "workdir", "continue_on_error", "checklist", "host")
STEP_KEYS += ("hosts",)
ARTIFACT_KEYS = ("name", "path", "value")
SCENARIO_KEYS = ("key", "title", "trigger", "step", "compare_data")
CHECK_KEYS = ("name", "run", "http", "sql", "manifest", "dsn", "expect", "timeout", "workdir")
CHECK_KEYS += ("host", "hosts")
CHECKLIST_KEYS = ("pre", "during", "post")
_SCENARIO_KEY = re.compile(r"[a-z0-9][a-z0-9_-]*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # usable as `{{ vars.NAME }}` / `{{ backup.NAME }}`


class RunbookError(Exception):
    """The runbook has problems; `problems` lists them all, str() one per line."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems


def load_runbook(path: Path) -> Runbook:
    """The validated runbook at `path`; raises RunbookError listing every problem."""
    runbook, problems = _read(Path(path))
    if problems or runbook is None:
        raise RunbookError(problems)
    return runbook


def check_runbook(path: Path) -> list[Problem]:
    """Every problem of the runbook at `path` ([] when it is valid); never raises for content."""
    return _read(Path(path))[1]


def inspect_runbook(path: Path) -> tuple[list[Problem], list[Problem]]:
    """(problems, warnings) of the runbook at `path`: warnings alone don't stop it loading."""
    _, problems, warnings = _read_all(Path(path))
    return problems, warnings


def _read(path: Path) -> tuple[Runbook | None, list[Problem]]:
    runbook, problems, _ = _read_all(path)
    return runbook, problems


def _read_all(path: Path) -> tuple[Runbook | None, list[Problem], list[Problem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        hint = "check the path (ROLLBACK_RUNBOOK or the file argument) and that it is readable"
        return None, [Problem(path, 0, f"cannot read the runbook: {reason}; {hint}")], []
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        return None, [_syntax_problem(path, text, str(error))], []
    reader = Reader(path, key_lines(text), source=tuple(text.splitlines()))
    runbook = _Loader(reader).runbook(document)
    by_line = attrgetter("line")
    return runbook, sorted(reader.problems, key=by_line), sorted(reader.warnings, key=by_line)


def _syntax_problem(path: Path, text: str, message: str) -> Problem:
    found = re.search(r"\(at line (\d+), column \d+\)$", message)
    line = int(found.group(1)) if found else max(text.count("\n") + (not text.endswith("\n")), 1)
    what = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)$", "", message)
    if what.startswith(("Cannot overwrite", "Cannot declare")):
        what += " (a key or table is defined twice; keep one)"
    return Problem(path, line, f"TOML syntax error: {what}")


def _named(prefix: str, index: int, data: dict[str, Any]) -> str:
    name = data.get("name")
    return f'{prefix} {index + 1} ("{name}")' if isinstance(name, str) else f"{prefix} {index + 1}"


class _Loader:
    """Reads each section of a parsed runbook into the model, reporting what is wrong."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.path = reader.path
        self.vars: dict[str, str] = {}
        self.project_keys: set[str] = set()
        self.checklists: dict[str, tuple[str, ...]] = {}
        self.artifacts: list[str] = []
        self.hosts: dict = {}
        self.manifest_dsn: str | None = None

    def runbook(self, document: dict[str, Any]) -> Runbook:
        top = Table(self.reader, document, (), "")
        top.known(TOP_KEYS)
        required = "project" in document  # else one problem says the table is missing
        if not required:
            top.report(None, "missing the [project] table (with name and workdir)")
        project = top.table("project", "[project]")
        project.known(PROJECT_KEYS)
        name, workdir = project.text("name", required), project.text("workdir", required)
        relative = Path(workdir or ".").expanduser()  # an absolute workdir replaces the base
        workdir_path = Path(os.path.normpath(self.path.parent.absolute() / relative))
        project_values = {
            key: value for key, value in project.data.items() if isinstance(value, str)
        }
        project_values["workdir"] = str(workdir_path)
        self.vars = self.read_vars(top.table("vars", "[vars]"))
        self.project_keys = set(project_values)
        self.checklists = self.read_checklists(top.table("checklists", "[checklists]"))
        self.hosts = read_hosts(top.table("hosts", "[hosts]"), self.path.parent.absolute())
        backup = top.table("backup", "[backup]")
        backup.known(("step", "manifest_dsn"))
        self.manifest_dsn = read_manifest_dsn(self, backup)
        backup_steps = self.read_steps(backup, "backup step", backup=True)
        artifacts = {i: step.artifact.name for i, step in enumerate(backup_steps) if step.artifact}
        self.artifacts = list(artifacts.values())
        self.duplicates(backup, ("step",), ("artifact", "name"), "artifact name", artifacts)
        entries = top.entries("scenario", "scenario")
        scenarios = [self.read_scenario(index, data) for index, data in entries]
        keys = dict(enumerate(scenario.key for scenario in scenarios))
        self.duplicates(top, ("scenario",), ("key",), "scenario key", keys)
        verify = top.table("verify", "[verify]")
        verify.known(("check",))
        return Runbook(
            path=self.path,
            project_name=name or "",
            workdir=workdir_path,
            policy=self.read_policy(top.table("policy", "[policy]")),
            notice_channels=self.read_notify(top.table("notify", "[notify]")),
            contacts=self.read_contacts(top.table("contacts", "[contacts]")),
            vars=self.vars,
            project=project_values,
            backup_steps=tuple(backup_steps),
            manifest_dsn=self.manifest_dsn,
            scenarios=tuple(scenarios),
            checks=tuple(
                self.read_check(verify, i, data)
                for i, data in verify.entries("check", "verify.check")
            ),
            checklists=self.checklists,
            hosts=self.hosts,
        )

    def read_vars(self, table: Table) -> dict[str, str]:
        values = {}
        for key, value in table.data.items():
            if not _NAME.fullmatch(key):
                table.report(
                    key, f"{key!r} can't be used as {{{{ vars.{key} }}}}: use letters, digits and _"
                )
            if isinstance(value, bool):
                values[key] = "true" if value else "false"
            elif isinstance(value, str | int | float):
                values[key] = str(value)
            else:
                table.report(
                    key, f"{key} must be a string, number or true/false, not {kind_of(value)}"
                )
        return values

    def read_checklists(self, table: Table) -> dict[str, tuple[str, ...]]:
        table.known(CHECKLIST_KEYS)
        return {key: table.strings(key) for key in CHECKLIST_KEYS if key in table.data}

    def read_policy(self, table: Table) -> Policy:
        table.known(POLICY_KEYS)
        return Policy(
            high_rollback_after=table.duration("high_rollback_after", Policy.high_rollback_after),
            approval_expires_after=table.duration(
                "approval_expires_after", Policy.approval_expires_after
            ),
            approvers=table.slack_ids("approvers", USER_OR_GROUP_ID),
            declarers=table.slack_ids("declarers", USER_OR_GROUP_ID),
            approvals_required=table.count("approvals_required", Policy.approvals_required),
            postmortem_reminder_after=table.duration(
                "postmortem_reminder_after", Policy.postmortem_reminder_after
            ),
        )

    def read_notify(self, table: Table) -> tuple[str, ...]:
        table.known(("notice_channels",))
        return table.slack_ids("notice_channels", CHANNEL_ID)

    def read_contacts(self, table: Table) -> dict[str, str]:
        contacts = {}
        for role, user in table.data.items():
            if isinstance(user, str) and USER_ID[0].fullmatch(user):
                contacts[role] = user
            else:
                table.report(role, f"{role}: {user!r} is not {USER_ID[1]}")
        return contacts

    def read_scenario(self, index: int, data: dict[str, Any]) -> Scenario:
        key = data.get("key")
        where = f'scenario "{key}"' if isinstance(key, str) else f"scenario {index + 1}"
        table = Table(self.reader, data, ("scenario", index), where)
        table.known(SCENARIO_KEYS)
        key, title = table.text("key", required=True), table.text("title", required=True)
        if key and not _SCENARIO_KEY.fullmatch(key):
            table.report("key", f"key {key!r} must be simple: lowercase letters, digits, - and _")
        elif key in SEVERITIES:
            table.report(
                "key",
                f"key {key!r} is a severity word; pick another so `declare` can tell them apart",
            )
        if not data.get("step"):
            table.report(None, "missing steps: add at least one [[scenario.step]]")
        steps = self.read_steps(table, f"{where}, step", backup=False)
        return Scenario(
            key or "",
            title or "",
            table.text("trigger") or "",
            tuple(steps),
            self.reader.line(table.at),
            read_compare_data(self, table),
        )

    def read_steps(self, parent: Table, prefix: str, backup: bool) -> list[Step]:
        steps = []
        for index, data in parent.entries("step", "backup.step" if backup else "scenario.step"):
            table = Table(
                self.reader, data, (*parent.at, "step", index), _named(prefix, index, data)
            )
            steps.append(self.read_step(table, backup))
        names = dict(enumerate(step.name for step in steps))
        self.duplicates(parent, ("step",), ("name",), "step name", names)
        return steps

    def read_step(self, table: Table, backup: bool) -> Step:
        table.known((*STEP_KEYS, "artifact") if backup else STEP_KEYS)
        artifact = None
        if backup and "artifact" in table.data:
            artifact_table = table.table("artifact", f"{table.where}, artifact")
            if isinstance(table.data["artifact"], dict):  # else table() reported its type
                artifact = self.read_artifact(artifact_table)
        run = table.text("run", required=True)
        if run is not None:
            artifacts = None if backup else self.artifacts
            has_artifact = backup and "artifact" in table.data  # even if the artifact is bad
            self.templates(table, {"run": run}, artifacts=artifacts, artifact=has_artifact)
        checklist = table.text("checklist")
        section = "pre" if backup else "during"
        if checklist is not None and checklist not in self.checklists.get(section, ()):
            items = ", ".join(f'"{item}"' for item in self.checklists.get(section, ())) or "none"
            table.report(
                "checklist",
                f'checklist "{checklist}" is not an item of checklists.{section} ({items})',
            )
        hosts = step_hosts(table, self.hosts)
        if artifact is not None and artifact.is_file and len(hosts) > 1:
            table.report(
                "hosts", "a backup step with a file artifact runs on one host (its file is there)"
            )
        return Step(
            hosts=hosts,
            name=table.text("name", required=True) or "",
            run=run or "",
            timeout=table.duration("timeout", DEFAULT_STEP_TIMEOUT),
            workdir=table.text("workdir"),
            continue_on_error=table.flag("continue_on_error"),
            checklist=checklist,
            artifact=artifact,
            line=self.reader.line(table.at),
        )

    def read_artifact(self, table: Table) -> Artifact:
        table.known(ARTIFACT_KEYS)
        name = table.text("name", required=True)
        if name and not _NAME.fullmatch(name):
            table.report(
                "name",
                f"name {name!r} can't be used as {{{{ backup.{name} }}}}: use letters, digits, _",
            )
        path, value = table.text("path"), table.text("value")
        if (path is None) == (value is None):
            table.report(
                None, "needs exactly one of path (a file) or value (a name such as a branch)"
            )
        self.templates(table, {"path": path, "value": value}, artifacts=None, artifact=False)
        return Artifact(name=name or "", path=path, value=value)

    def read_check(self, verify: Table, index: int, data: dict[str, Any]) -> Check:
        table = Table(
            self.reader, data, ("verify", "check", index), _named("verify check", index, data)
        )
        table.known(CHECK_KEYS)
        manifest = manifest_check_problems(table, data, self.manifest_dsn)
        kinds = [kind for kind in ("run", "http", "sql", "manifest") if kind in data]
        if len(kinds) != 1:
            found = ", ".join(kinds) or "none"
            table.report(None, f"needs exactly one of run, http, sql or manifest (found: {found})")
        fields = {key: table.text(key) for key in ("run", "http", "sql", "dsn", "expect")}
        templates = {key: fields[key] for key in ("run", "http", "sql")}
        hosts = step_hosts(table, self.hosts)
        for kind in ("http", "sql", "manifest"):
            if kind in data and ("host" in data or "hosts" in data):
                key = "host" if "host" in data else "hosts"
                how = "URL" if kind == "http" else "DSN"
                table.report(key, f"a {kind} check connects by {how} and takes no {key}; remove it")
        self.templates(table, templates, artifacts=self.artifacts, artifact=False)
        return Check(
            name=table.text("name", required=True) or "",
            timeout=table.duration("timeout", DEFAULT_CHECK_TIMEOUT),
            workdir=table.text("workdir"),
            line=self.reader.line(table.at),
            hosts=hosts,
            manifest=manifest and data.get("manifest") is True,
            **fields,
        )

    def templates(
        self,
        table: Table,
        fields: dict[str, str | None],
        artifacts: list[str] | None,
        artifact: bool,
    ) -> None:
        for key, template in fields.items():
            if template is None:
                continue
            found = template_problems(
                template,
                vars=self.vars,
                project=self.project_keys,
                artifacts=artifacts,
                artifact=artifact,
            )
            for problem in found:
                table.report(key, f"{key}: {problem}")
            if key == "run" and not found:  # a bash script: where do its placeholders sit?
                self.shell_quoting(table, template)

    def shell_quoting(self, table: Table, script: str) -> None:
        """Report placeholders bash would unquote (errors) and unguarded psql (warnings)."""
        at = (*table.at, "run")
        for line, message in placeholder_problems(script):
            self.reader.report_in_string(at, line, table.where, f"run: {message}")
        for line, message in psql_warnings(script):
            self.reader.report_in_string(at, line, table.where, f"run: {message}", warning=True)

    def duplicates(
        self, parent: Table, key: KeyPath, suffix: KeyPath, what: str, names: dict[int, str]
    ) -> None:
        """Report each name seen before, at its own line, naming where it first appeared."""
        first: dict[str, int] = {}
        for index, name in names.items():
            if name and name in first:
                other = self.reader.line((*parent.at, *key, first[name], *suffix))
                message = f'duplicate {what} "{name}" (first on line {other}); make it unique'
                self.reader.report((*parent.at, *key, index, *suffix), parent.where, message)
            first.setdefault(name, index)
