"""The runbook as frozen data: what `runbook.toml` says, validated, with nothing left to parse."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SEVERITIES = ("critical", "high", "medium", "low")
DEFAULT_STEP_TIMEOUT = 600.0
DEFAULT_CHECK_TIMEOUT = 60.0


@dataclass(frozen=True)
class Artifact:
    """What a backup step leaves behind: a file (`path`) or a name (`value`), both templates."""

    name: str
    path: str | None = None
    value: str | None = None

    @property
    def is_file(self) -> bool:
        """True when the artifact is a file whose size and checksum are recorded."""
        return self.path is not None


@dataclass(frozen=True)
class Step:
    """One bash script to run, in order, as part of a backup or a scenario."""

    name: str
    run: str  # a Jinja template; rendered with every value shell-quoted
    timeout: float = DEFAULT_STEP_TIMEOUT  # seconds
    workdir: str | None = None  # None: the project's workdir
    continue_on_error: bool = False
    checklist: str | None = None  # a `checklists.during` item this step ticks
    artifact: Artifact | None = None  # backup steps only
    line: int = 0  # where the step starts in the runbook file
    hosts: tuple[str, ...] = ()  # [hosts.NAME] it runs on, in parallel; empty: the bot's machine


@dataclass(frozen=True)
class CompareData:
    """Which two databases to compare after a scenario's steps (templates, not shell-quoted).

    Each is a DSN (postgresql://…) or a bare database name, taken on the other's server.
    """

    failed: str  # the failed state, kept (renamed) by the scenario's steps
    restored: str  # the database the scenario restored
    line: int = 0


@dataclass(frozen=True)
class Scenario:
    """A rollback scenario: `/rollback declare critical KEY` runs its steps."""

    key: str
    title: str
    trigger: str
    steps: tuple[Step, ...]
    line: int = 0
    compare_data: CompareData | None = None


@dataclass(frozen=True)
class Check:
    """One post-rollback verification: exactly one of `run`, `http`, `sql` or `manifest`."""

    name: str
    run: str | None = None
    http: str | None = None
    sql: str | None = None
    dsn: str | None = None  # for `sql`; None: the project's database (vars.db_url if set)
    expect: str | None = None
    timeout: float = DEFAULT_CHECK_TIMEOUT
    workdir: str | None = None
    line: int = 0
    hosts: tuple[str, ...] = ()  # `run` checks only: where the check runs; empty: locally
    manifest: bool = False  # compare `dsn` (default vars.db_url) with the backup's manifest

    @property
    def kind(self) -> str:
        """'run', 'http', 'sql' or 'manifest'."""
        if self.manifest:
            return "manifest"
        return "run" if self.run is not None else "http" if self.http is not None else "sql"


@dataclass(frozen=True)
class Host:
    """A `[hosts.NAME]` machine that steps reach over SSH; its key must be in `known_hosts`."""

    name: str
    address: str
    user: str
    known_hosts: Path  # absolute; the only source of trusted host keys (no accept-new mode)
    port: int = 22
    identity: Path | None = None  # a private key file; None: ssh-agent / the default keys
    jump: str | None = None  # another host's NAME to tunnel through
    line: int = 0

    @property
    def label(self) -> str:
        """How messages name the host: `app1 (deploy@10.0.0.5:22)`."""
        return f"{self.name} ({self.user}@{self.address}:{self.port})"


@dataclass(frozen=True)
class Policy:
    """When to propose a rollback and who may decide."""

    high_rollback_after: float = 7200.0  # seconds
    approval_expires_after: float = 1800.0  # seconds
    approvers: tuple[str, ...] = ()  # U…/W… users or S… user groups; empty: anyone but the declarer
    declarers: tuple[str, ...] = ()  # who may declare and escalate; empty: anyone
    approvals_required: int = 1  # distinct approvers, none of them a requester
    postmortem_reminder_after: float = 86400.0  # seconds between post-mortem reminders


@dataclass(frozen=True)
class Runbook:
    """A whole validated runbook file."""

    path: Path
    project_name: str
    workdir: Path
    policy: Policy = field(default_factory=Policy)
    notice_channels: tuple[str, ...] = ()
    contacts: dict[str, str] = field(default_factory=dict)  # role -> Slack user ID
    vars: dict[str, str] = field(default_factory=dict)
    project: dict[str, str] = field(default_factory=dict)  # every [project] key, as text
    backup_steps: tuple[Step, ...] = ()
    manifest_dsn: str | None = None  # `[backup] manifest_dsn`: the database a backup describes
    scenarios: tuple[Scenario, ...] = ()
    checks: tuple[Check, ...] = ()
    checklists: dict[str, tuple[str, ...]] = field(default_factory=dict)  # pre / during / post
    hosts: dict[str, Host] = field(default_factory=dict)  # [hosts.NAME] tables by NAME

    def scenario(self, key: str) -> Scenario | None:
        """The scenario with this key, or None."""
        return next((s for s in self.scenarios if s.key == key), None)

    @property
    def artifact_names(self) -> tuple[str, ...]:
        """Names of every artifact the backup steps produce, in order."""
        return tuple(s.artifact.name for s in self.backup_steps if s.artifact)
