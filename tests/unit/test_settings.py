"""Settings from the environment and `.env`: defaults, precedence, and one clear error each."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError, load_settings

TOKEN = "xoxb-1-abc"
APP_TOKEN = "xapp-1-abc"


def load(env_file: Path | None = None, **environ: str) -> Settings:
    return load_settings(environ, env_file=env_file)


def test_defaults_when_nothing_is_set():
    settings = load()
    assert settings.slack_bot_token is None
    assert settings.slack_signing_secret is None
    assert settings.slack_app_token is None
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.database_url is None
    assert settings.data_dir == Path.home() / ".local/share/rollback-bot"
    assert settings.runbook_path == Path("runbook.toml")
    assert settings.port == 3000
    assert settings.log_level == "INFO"
    assert settings.socket_mode is False
    assert settings.db_pool_size == 20


def test_values_are_read_and_trimmed():
    settings = load(
        SLACK_BOT_TOKEN=f" {TOKEN} ",
        SLACK_SIGNING_SECRET="s3cret",
        SLACK_APP_TOKEN=APP_TOKEN,
        DATABASE_URL="postgresql://bot@db/rollback",
        ROLLBACK_DATA_DIR="/var/lib/rb",
        ROLLBACK_RUNBOOK="/etc/rb/runbook.toml",
        PORT="8080",
        ROLLBACK_LOG_LEVEL="debug",
        ROLLBACK_DB_POOL_SIZE="8",
    )
    assert settings.slack_bot_token == TOKEN
    assert settings.slack_signing_secret == "s3cret"
    assert settings.slack_app_token == APP_TOKEN
    assert settings.database_url == "postgresql://bot@db/rollback"
    assert settings.data_dir == Path("/var/lib/rb")
    assert settings.runbook_path == Path("/etc/rb/runbook.toml")
    assert settings.port == 8080
    assert settings.log_level == "DEBUG"
    assert settings.socket_mode is True
    assert settings.db_pool_size == 8


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        load().port = 1  # type: ignore[misc]


def test_dotenv_file_is_read_and_the_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(f"SLACK_BOT_TOKEN={TOKEN}\nPORT=4000\nROLLBACK_RUNBOOK=/from/file.toml\n")
    settings = load(env_file, PORT="5000")
    assert settings.slack_bot_token == TOKEN
    assert settings.runbook_path == Path("/from/file.toml")
    assert settings.port == 5000


def test_dotenv_in_the_working_directory_is_read_by_default(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("PORT=4321\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings({}).port == 4321


def test_process_environment_is_used_when_none_is_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PORT", "6001")
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    settings = load_settings()
    assert settings.port == 6001
    assert settings.slack_bot_token == TOKEN


def test_malformed_value_in_dotenv_names_the_variable(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=abc\n")
    with pytest.raises(SettingsError, match=r"^PORT: "):
        load(env_file)


MALFORMED = [
    ("PORT", "abc"),
    ("PORT", "70000"),
    ("PORT", "0"),
    ("PORT", "-1"),
    ("PORT", "80.5"),
    ("SLACK_BOT_TOKEN", "xoxp-user-token"),
    ("SLACK_BOT_TOKEN", "bot-token"),
    ("SLACK_APP_TOKEN", "xoxb-not-an-app-token"),
    ("DATABASE_URL", "mysql://root@localhost/db"),
    ("DATABASE_URL", "localhost:5432"),
    ("SLACK_API_URL", "ftp://slack.example/api/"),
    ("SLACK_API_URL", "slack.com/api"),
    ("ROLLBACK_LOG_LEVEL", "LOUD"),
    ("ROLLBACK_SLACK_MIN_INTERVAL", "nan"),
    ("ROLLBACK_SYNC_INTERVAL", "0"),
    ("ROLLBACK_DB_POOL_SIZE", "1"),  # one connection LISTENs; nothing would be left to work
    ("ROLLBACK_DB_POOL_SIZE", "ten"),
]


@pytest.mark.parametrize(("name", "value"), MALFORMED, ids=[f"{n}={v}" for n, v in MALFORMED])
def test_malformed_value_raises_one_line_naming_the_variable(name, value):
    with pytest.raises(SettingsError) as caught:
        load(**{name: value})
    error = caught.value
    assert error.name == name
    assert str(error).startswith(f"{name}: ")
    assert "expected" in str(error)
    assert "\n" not in str(error)


def test_empty_values_count_as_unset():
    settings = load(PORT="  ", SLACK_BOT_TOKEN="", DATABASE_URL="")
    assert settings.port == 3000
    assert settings.slack_bot_token is None
    assert settings.database_url is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:9999/api", "http://127.0.0.1:9999/api/"),
        ("https://proxy.example/slack/api/", "https://proxy.example/slack/api/"),
    ],
)
def test_slack_api_url_gets_a_trailing_slash(given, expected):
    assert load(SLACK_API_URL=given).slack_api_url == expected


def test_http_mode_needs_the_bot_token_and_signing_secret():
    load(SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET="s").require_serving(http=True)
    with pytest.raises(SettingsError, match=r"^SLACK_SIGNING_SECRET: ") as caught:
        load(SLACK_BOT_TOKEN=TOKEN).require_serving(http=True)
    assert caught.value.name == "SLACK_SIGNING_SECRET"
    with pytest.raises(SettingsError, match=r"^SLACK_BOT_TOKEN: "):
        load(SLACK_SIGNING_SECRET="s").require_serving(http=True)


def test_socket_mode_needs_the_bot_token_and_app_token_but_no_signing_secret():
    load(SLACK_BOT_TOKEN=TOKEN, SLACK_APP_TOKEN=APP_TOKEN).require_serving(http=False)
    with pytest.raises(SettingsError, match=r"^SLACK_APP_TOKEN: "):
        load(SLACK_BOT_TOKEN=TOKEN).require_serving(http=False)
    with pytest.raises(SettingsError, match=r"^SLACK_BOT_TOKEN: "):
        load(SLACK_APP_TOKEN=APP_TOKEN).require_serving(http=False)
