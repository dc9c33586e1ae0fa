"""`.env` in the working directory is read at start, the environment wins, and only `bot/settings.py` reads either."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
NAMES = (
    "WEBHOOK_SECRET",
    "APP_ID",
    "PRIVATE_KEY",
    "PRIVATE_KEY_PATH",
    "WEBHOOK_PATH",
    "LOG_LEVEL",
    "GITHUB_URL",
    "GITHUB_API_URL",
    "DATA_DIR",
    "REDIS_URL",
    "PORT",
)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_dotenv_file_is_read_and_the_environment_wins(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (workdir / ".env").write_text(
        "# written by hand\n"
        "WEBHOOK_SECRET=from-file-secret-16\n"
        "APP_ID=123\n"
        'PRIVATE_KEY="-----BEGIN RSA PRIVATE KEY-----\nabc$HOME\n-----END RSA PRIVATE KEY-----"\n'
        "WEBHOOK_PATH=/from-file\n"
        "LOG_LEVEL=debug\n"
    )
    monkeypatch.setenv("WEBHOOK_PATH", "/from-env")
    settings = Settings.from_env()
    assert settings.webhook_secret == "from-file-secret-16" and settings.app_id == "123"
    assert settings.private_key == "-----BEGIN RSA PRIVATE KEY-----\nabc$HOME\n-----END RSA PRIVATE KEY-----"
    assert settings.webhook_path == "/from-env"
    assert settings.log_level == "DEBUG"


def test_no_dotenv_file_means_setup_mode(workdir: Path) -> None:
    settings = Settings.from_env()
    assert settings.webhook_secret == "" and settings.app_id is None


def test_an_explicit_mapping_ignores_the_dotenv_file(workdir: Path) -> None:
    (workdir / ".env").write_text("WEBHOOK_SECRET=from-file\n")
    assert Settings.from_env({}).webhook_secret == ""


def test_only_the_settings_reader_touches_the_environment() -> None:
    readers = re.compile(r"os\.environ|os\.getenv|getenv\(|dotenv")
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "bot").rglob("*.py"))
        if path.name != "settings.py" and readers.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
