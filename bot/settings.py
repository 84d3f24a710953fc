"""One frozen Settings object, built once from the environment and an optional `.env` file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values


class SettingsError(Exception):
    """A setting is missing or malformed; str() is one line naming it and what is expected."""

    def __init__(self, name: str, expected: str) -> None:
        super().__init__(f"{name}: {expected}")
        self.name = name


@dataclass(frozen=True)
class Settings:
    """Everything the bot reads from its environment (PRODUCT.md §2)."""

    slack_bot_token: str | None
    slack_signing_secret: str | None
    slack_app_token: str | None
    slack_api_url: str
    database_url: str | None
    data_dir: Path
    runbook_path: Path
    runbook_from_env: bool  # ROLLBACK_RUNBOOK was set (else runbook_path is ./runbook.toml)
    port: int
    slack_min_interval: float  # seconds between two messages the bot posts to one channel
    sync_interval: float  # how often each process looks for work other processes left
    run_lease: float  # a run whose process stops renewing this lease is taken as interrupted
    shutdown_grace: float  # on SIGTERM, how long the current step may take to finish
    log_level: str
    port_given: bool = False  # PORT was set (Socket Mode then answers /healthz on it)
    step_clock_after: float = 5.0  # a step running this long shows how long (and last time)
    db_pool_size: int = 20  # most database connections one process holds (one LISTENs)

    @property
    def socket_mode(self) -> bool:
        """True when an app-level token is configured (Socket Mode is then the default)."""
        return bool(self.slack_app_token)

    def require_serving(self, *, http: bool) -> None:
        """Raise SettingsError unless the tokens needed to serve in this mode are present."""
        if not self.slack_bot_token:
            raise SettingsError("SLACK_BOT_TOKEN", "required to serve: the bot token (xoxb-…)")
        if http and not self.slack_signing_secret:
            raise SettingsError(
                "SLACK_SIGNING_SECRET", "required in HTTP mode: the app's signing secret"
            )
        if not http and not self.slack_app_token:
            raise SettingsError("SLACK_APP_TOKEN", "required in Socket Mode: the xapp-… token")


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")
) -> Settings:
    """Read settings; the process environment wins over `.env`. Raises SettingsError."""
    values: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)

    def get(name: str) -> str | None:
        value = values.get(name, "").strip()
        return value or None

    return Settings(
        slack_bot_token=_prefixed(get, "SLACK_BOT_TOKEN", "xoxb-", "a bot token starting xoxb-"),
        slack_signing_secret=get("SLACK_SIGNING_SECRET"),
        slack_app_token=_prefixed(
            get,
            "SLACK_APP_TOKEN",
            "xapp-",
            "an app-level token starting xapp- (Basic Information → App-Level Tokens; "
            "the xoxb- bot token goes in SLACK_BOT_TOKEN)",
        ),
        slack_api_url=_api_url(get("SLACK_API_URL") or "https://slack.com/api/"),
        database_url=_database_url(get("DATABASE_URL")),
        data_dir=Path(
            get("ROLLBACK_DATA_DIR") or Path.home() / ".local/share/rollback-bot"
        ).expanduser(),
        runbook_path=Path(get("ROLLBACK_RUNBOOK") or "runbook.toml").expanduser(),
        runbook_from_env=get("ROLLBACK_RUNBOOK") is not None,
        port=_number(get, "PORT", 3000, int, 1, 65535, "a TCP port number (1-65535)"),
        slack_min_interval=_number(
            get, "ROLLBACK_SLACK_MIN_INTERVAL", 1.0, float, 0.0, 60.0, "seconds, 0-60"
        ),
        sync_interval=_number(get, "ROLLBACK_SYNC_INTERVAL", 10.0, float, 0.2, 3600.0, "seconds"),
        run_lease=_number(get, "ROLLBACK_RUN_LEASE", 30.0, float, 1.0, 3600.0, "seconds"),
        shutdown_grace=_number(get, "ROLLBACK_SHUTDOWN_GRACE", 25.0, float, 0.0, 3600.0, "seconds"),
        log_level=_log_level(get("ROLLBACK_LOG_LEVEL") or "INFO"),
        port_given=get("PORT") is not None,
        step_clock_after=_number(
            get, "ROLLBACK_STEP_CLOCK_AFTER", 5.0, float, 1.0, 3600.0, "seconds, 1-3600"
        ),
        db_pool_size=_number(
            get, "ROLLBACK_DB_POOL_SIZE", 20, int, 2, 1000, "a number of connections, 2-1000"
        ),
    )


class WrongToken(SettingsError):
    """A token of the wrong kind (a bot token where the app token belongs, or the reverse):
    Slack would refuse it, so `serve` stops as for a token Slack refused (exit status 1)."""

    exit_code = 1


def _prefixed(get, name: str, prefix: str, expected: str) -> str | None:
    value = get(name)
    if value is not None and not value.startswith(prefix):
        raise WrongToken(name, f"expected {expected}")
    return value


def _api_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(
            "SLACK_API_URL", "expected an http(s) URL such as https://slack.com/api/"
        )
    return value if value.endswith("/") else value + "/"


def _database_url(value: str | None) -> str | None:
    if value is not None and urlsplit(value).scheme not in ("postgres", "postgresql"):
        raise SettingsError(
            "DATABASE_URL", "expected a PostgreSQL DSN such as postgresql://user@host/db"
        )
    return value


def _number(get, name: str, default, kind, low, high, expected: str):
    raw = get(name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(name, f"expected {expected}, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(name, f"expected {expected}, got {raw!r}")
    return value


def _log_level(value: str) -> str:
    level = value.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError("ROLLBACK_LOG_LEVEL", "expected DEBUG, INFO, WARNING or ERROR")
    return level
