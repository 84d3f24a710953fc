"""Runbook placeholders -> command text, with every substituted value shell-quoted.

Templates are Jinja with `StrictUndefined`, in a sandbox, and may only hold plain
placeholders (`{{ vars.db_name }}`, `{{ backup.db_dump }}`, …): `template_problems` says
what else a template contains, for the runbook validator.
"""

from __future__ import annotations

import shlex
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from actions import restore_points
from actions.model import Runbook, Scenario

TS_FORMAT = "%Y%m%d_%H%M%S"
DATE_FORMAT = "%Y%m%d"
EXPECTED_PLACEHOLDERS = (
    "vars.NAME, project.NAME, ts, date, incident.id, artifact, backup.NAME, backup_dir, "
    "run_dir or failed_db"
)
BACKUP_ONLY = ("backup_dir",)  # backup steps and their artifacts
ROLLBACK_ONLY = ("run_dir", "failed_db")  # scenario steps and verify checks
_PLAIN_ONLY = "only plain placeholders such as {{ vars.db_name }} are allowed"
_STATEMENT_WORDS = {"Assign": "set", "AssignBlock": "set", "ExprStmt": "do", "FromImport": "import"}


class RenderError(Exception):
    """A template could not be rendered; the message says which placeholder and why."""


@dataclass(frozen=True)
class RenderContext:
    """Everything a template's placeholders may refer to, for one run."""

    runbook: Runbook
    ts: str
    date: str
    incident_id: str | None = None
    backup: Mapping[str, str] = field(default_factory=dict)  # artifact name -> path or value
    artifact: str | None = None  # the current backup step's artifact path or value
    run_id: int | None = None  # the backup or rollback run (names its folders)

    @property
    def backup_dir(self) -> str:
        """`{{ backup_dir }}`: this backup's own folder (actions/restore_points.py)."""
        return restore_points.backup_dir(self.ts, self.run_id)

    @property
    def run_dir(self) -> str:
        """`{{ run_dir }}`: where this rollback run keeps the failed state."""
        return restore_points.run_dir(self.incident_id, self.run_id, self.ts)

    @property
    def failed_db(self) -> str | None:
        """`{{ failed_db }}`: the name the failed `vars.db_name` database is kept under."""
        db_name = self.runbook.vars.get("db_name")
        return restore_points.failed_database(db_name, self.ts) if db_name else None

    @classmethod
    def at(
        cls,
        runbook: Runbook,
        when: datetime | None = None,
        *,
        incident_id: str | None = None,
        backup: Mapping[str, str] | None = None,
        artifact: str | None = None,
        run_id: int | None = None,
    ) -> RenderContext:
        """A context whose `ts` and `date` come from `when` (default: now)."""
        when = when or datetime.now()
        return cls(
            runbook=runbook,
            ts=when.strftime(TS_FORMAT),
            date=when.strftime(DATE_FORMAT),
            incident_id=incident_id,
            backup=dict(backup or {}),
            artifact=artifact,
            run_id=run_id,
        )

    def with_artifact(self, artifact: str | None) -> RenderContext:
        """The same context for a backup step whose artifact is `artifact`."""
        return replace(self, artifact=artifact)


def render(template: str, ctx: RenderContext, *, shell: bool = True) -> str:
    """Render `template`; with `shell`, every value is shell-quoted. Raises RenderError."""
    for name in sorted(placeholders_in(template)):
        missing = _missing_value(name, ctx)
        if missing:
            raise RenderError(missing)
    try:
        return _environment(shell).from_string(template).render(_variables(ctx))
    except UndefinedError as error:
        raise RenderError(f"a placeholder has no value: {error.message}") from None
    except TemplateError as error:
        raise RenderError(f"cannot render template: {error.message}") from None


def placeholders_in(template: str) -> set[str]:
    """Dotted names the template refers to, e.g. {"vars.db_name", "backup.db_dump", "ts"}."""
    return set(_names(_parse(template)))


def scenario_artifacts(scenario: Scenario) -> set[str]:
    """Names of the backup artifacts a scenario's steps refer to as `{{ backup.NAME }}`."""
    names: set[str] = set()
    for step in scenario.steps:
        try:
            found = placeholders_in(step.run)
        except RenderError:
            continue  # the validator reports bad templates
        names |= {name.split(".", 1)[1] for name in found if name.startswith("backup.")}
    return names


def template_problems(
    template: str,
    *,
    vars: Collection[str],
    project: Collection[str],
    artifacts: Collection[str] | None = None,
    artifact: bool = False,
) -> list[str]:
    """What is wrong with a runbook template, given where it appears ([] if nothing).

    `artifacts` lists the backup artifacts `{{ backup.NAME }}` may name (None: not allowed
    here); `artifact` says whether `{{ artifact }}` is allowed (a backup step with one).
    """
    try:
        tree = _parse(template)
    except RenderError as error:
        return [str(error)]
    problems = [
        f"statement {{% {_statement_word(node)} %}} is not allowed: {_PLAIN_ONLY}"
        for node in tree.body
        if not isinstance(node, nodes.Output)
    ]
    for name, expression in _expressions(tree):
        if name is None:
            problems.append(f"{_describe(expression)} is not allowed: {_PLAIN_ONLY}")
        else:
            problem = _placeholder_problem(name, vars, project, artifacts, artifact)
            if problem:
                problems.append(problem)
    return problems


def _placeholder_problem(
    name: str,
    vars: Collection[str],
    project: Collection[str],
    artifacts: Collection[str] | None,
    artifact: bool,
) -> str | None:
    root, _, rest = name.partition(".")
    shown = f"{{{{ {name} }}}}"
    if name in ("ts", "date", "incident.id") or (name == "artifact" and artifact):
        return None
    if name in BACKUP_ONLY:
        return None if artifacts is None else f"{shown} is only available in backup steps"
    if name in ROLLBACK_ONLY and artifacts is None:
        return f"{shown} is only available in scenario steps and verify checks"
    if name == "failed_db" and "db_name" not in vars:
        return f"{shown} names the kept copy of {{{{ vars.db_name }}}}: add db_name to [vars]"
    if name in ROLLBACK_ONLY:
        return None
    if name == "artifact":
        return f"{shown} is only available in a backup step that declares an artifact"
    if root in ("vars", "project", "backup") and not rest:
        return f"{shown} needs a name, e.g. {{{{ {root}.NAME }}}}"
    for table, defined in (("vars", vars), ("project", project)):
        if root == table and rest in defined:
            return None
        if root == table:
            known = ", ".join(sorted(defined)) or "none"
            return f"unknown placeholder {shown}: no key {rest!r} in [{table}] (defined: {known})"
    if root == "backup" and artifacts is None:
        return f"{shown} is only available in scenario steps and verify checks"
    if root == "backup" and rest in artifacts:
        return None
    if root == "backup":
        known = ", ".join(sorted(artifacts)) or "none"
        return f"unknown placeholder {shown}: no backup step makes artifact {rest!r} ({known})"
    return f"unknown placeholder {shown} (expected {EXPECTED_PLACEHOLDERS})"


def _missing_value(name: str, ctx: RenderContext) -> str | None:
    root, _, rest = name.partition(".")
    shown = f"{{{{ {name} }}}}"
    if root == "backup" and rest not in ctx.backup:
        return (
            f"{shown} has no value: no completed backup holds artifact {rest!r}; "
            "run `/rollback backup` first"
        )
    if name == "artifact" and ctx.artifact is None:
        return f"{shown} has no value: it is only set in a backup step that declares an artifact"
    if name == "incident.id" and ctx.incident_id is None:
        return f"{shown} has no value: this run belongs to no incident"
    if name == "failed_db" and ctx.failed_db is None:
        return f"{shown} has no value: add 'db_name' to [vars] in {ctx.runbook.path.name}"
    if root in ("vars", "project") and rest not in getattr(ctx.runbook, root):
        return f"{shown} has no value: add {rest!r} to [{root}] in {ctx.runbook.path.name}"
    return None


def _variables(ctx: RenderContext) -> dict[str, Any]:
    variables: dict[str, Any] = {
        "vars": dict(ctx.runbook.vars),
        "project": dict(ctx.runbook.project),
        "ts": ctx.ts,
        "date": ctx.date,
        "backup": dict(ctx.backup),
        "incident": {} if ctx.incident_id is None else {"id": ctx.incident_id},
        "backup_dir": ctx.backup_dir,
        "run_dir": ctx.run_dir,
    }
    if ctx.failed_db is not None:
        variables["failed_db"] = ctx.failed_db
    if ctx.artifact is not None:
        variables["artifact"] = ctx.artifact
    return variables


def _shell_quote(value: object) -> str:
    return shlex.quote(_as_text(value))


def _as_text(value: object) -> str:
    if value is None:
        raise RenderError("a placeholder has no value (None)")
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    if "\x00" in text:
        raise RenderError("a placeholder's value contains a NUL byte, which no command can take")
    return text


class _Environment(ImmutableSandboxedEnvironment):
    """A sandbox where `a.b` on a mapping is only ever its item `b`, never a dict method."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


def _environment(shell: bool) -> _Environment:
    # `{##` rather than `{#` starts a comment, so bash's `${#array[@]}` stays plain text.
    return _Environment(
        undefined=StrictUndefined,
        autoescape=False,
        finalize=_shell_quote if shell else _as_text,
        comment_start_string="{##",
        comment_end_string="##}",
    )


def _parse(template: str) -> nodes.Template:
    try:
        return _environment(shell=True).parse(template)
    except TemplateSyntaxError as error:
        raise RenderError(
            f"template syntax error on its line {error.lineno}: {error.message}"
        ) from None


def _expressions(tree: nodes.Template) -> Iterator[tuple[str | None, nodes.Node]]:
    """Each `{{ … }}` expression with its dotted name (None when it is not a plain name)."""
    for output in tree.find_all(nodes.Output):
        for node in output.nodes:
            if not isinstance(node, nodes.TemplateData):
                yield _dotted_name(node), node


def _names(node: nodes.Node) -> Iterator[str]:
    """Every dotted name read anywhere below `node`."""
    name = _dotted_name(node)
    if name is not None:
        yield name
        return
    for child in node.iter_child_nodes():
        yield from _names(child)


def _dotted_name(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Name):
        return node.name if node.ctx == "load" else None
    if isinstance(node, nodes.Getattr):
        base = _dotted_name(node.node)
        return None if base is None else f"{base}.{node.attr}"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        base = _dotted_name(node.node)
        return None if base is None else f"{base}.{node.arg.value}"
    return None


def _describe(expression: nodes.Node) -> str:
    for kind, label in ((nodes.Filter, "filter '|{}'"), (nodes.Test, "test 'is {}'")):
        found = expression.find(kind) if not isinstance(expression, kind) else expression
        if found is not None:
            return label.format(found.name)
    if isinstance(expression, nodes.Call) or expression.find(nodes.Call) is not None:
        return "a function call"
    return f"the expression {type(expression).__name__.lower()}"


def _statement_word(node: nodes.Node) -> str:
    name = type(node).__name__
    return _STATEMENT_WORDS.get(name, name.lower())
