"""Settings come only from the environment, with Probot's names; bad values are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError

SECRET = "config-test-secret-16+"  # WEBHOOK_SECRET must be at least 16 characters


def test_secret_is_required_once_an_app_is_named() -> None:
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET"):
        Settings.from_env({"APP_ID": "1"})
    assert Settings.from_env({}).webhook_secret == ""  # setup mode: the App is registered from `/`


def test_defaults() -> None:
    settings = Settings.from_env({"WEBHOOK_SECRET": SECRET})
    assert settings.webhook_path == "/api/github/webhooks"
    assert settings.github_api_url == "https://api.github.com"
    assert settings.redis_url is None and settings.port == 3000 and settings.dry_run is False
    assert settings.queue_fsync is True and settings.queue_namespace == ""
    assert settings.missing_for_github() == ("APP_ID", "PRIVATE_KEY or PRIVATE_KEY_PATH")


def test_every_variable_is_read(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----\n")
    settings = Settings.from_env(
        {
            "WEBHOOK_SECRET": SECRET,
            "APP_ID": "42",
            "PRIVATE_KEY_PATH": str(key),
            "WEBHOOK_PATH": "/hooks",
            "GITHUB_API_URL": "https://ghe.example/api/v3/",
            "REDIS_URL": "redis://127.0.0.1:6379/1",
            "DATA_DIR": "/var/lib/bot",
            "PORT": "8080",
            "LOG_LEVEL": "debug",
            "DRY_RUN": "true",
            "PREVIEW_THRESHOLD": "50",
            "QUEUE_FSYNC": "normal",
            "QUEUE_NAMESPACE": "staging",
        }
    )
    assert settings.app_id == "42" and settings.private_key and "BEGIN RSA" in settings.private_key
    assert settings.webhook_path == "/hooks" and settings.github_api_url == "https://ghe.example/api/v3"
    assert settings.redis_url == "redis://127.0.0.1:6379/1" and settings.data_dir == "/var/lib/bot"
    assert (settings.port, settings.log_level, settings.dry_run) == (8080, "DEBUG", True)
    assert (settings.preview_threshold, settings.queue_fsync, settings.queue_namespace) == (50, False, "staging")
    assert settings.missing_for_github() == ()


def test_escaped_newlines_in_an_inline_key_are_restored() -> None:
    settings = Settings.from_env({"WEBHOOK_SECRET": SECRET, "PRIVATE_KEY": "-----BEGIN-----\\nabc\\n-----END-----"})
    assert settings.private_key == "-----BEGIN-----\nabc\n-----END-----"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "http"),
        ("PREVIEW_THRESHOLD", "many"),
        ("WEBHOOK_PATH", "hooks"),
        ("QUEUE_FSYNC", "sometimes"),
        ("QUEUE_NAMESPACE", "a b"),
        ("PRIVATE_KEY_PATH", "/nonexistent/key.pem"),
        ("PREVIEW_THRESHOLD", "-1"),
        ("LOG_LEVEL", "verbose"),
        ("REDIS_URL", "garbage"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({"WEBHOOK_SECRET": SECRET, name: value})


def test_a_data_dir_that_is_a_file_or_a_binary_key_is_named(tmp_path: Path) -> None:
    afile = tmp_path / "data"
    afile.write_text("x")
    with pytest.raises(SettingsError, match="DATA_DIR"):
        Settings.from_env({"WEBHOOK_SECRET": SECRET, "DATA_DIR": str(afile)})
    key = tmp_path / "key.pem"
    key.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(SettingsError, match="PRIVATE_KEY_PATH"):
        Settings.from_env({"WEBHOOK_SECRET": SECRET, "PRIVATE_KEY_PATH": str(key)})
