"""WEBHOOK_SECRET must be a real secret and WEBHOOK_PATH a literal path; both are refused by name at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main as cli
from bot.queue.durable import InMemoryQueue
from bot.settings import MIN_SECRET_LENGTH, Settings, SettingsError
from bot.web.flask_app import create_app

GOOD = "0123456789abcdef"  # 16 characters


@pytest.mark.parametrize("secret", ["x", "s", "change-me", "0123456789abcde"])
def test_a_short_secret_is_refused_without_echoing_it(secret: str) -> None:
    with pytest.raises(SettingsError, match=rf"WEBHOOK_SECRET.*{MIN_SECRET_LENGTH}") as caught:
        Settings.from_env({"WEBHOOK_SECRET": secret})
    assert repr(secret) not in str(caught.value) and "got 0" not in str(caught.value)
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET"):  # with an App too
        Settings.from_env({"WEBHOOK_SECRET": secret, "APP_ID": "7", "PRIVATE_KEY": "k"})


def test_a_secret_of_the_minimum_length_is_kept_as_it_is() -> None:
    assert MIN_SECRET_LENGTH >= 16
    assert Settings.from_env({"WEBHOOK_SECRET": GOOD}).webhook_secret == GOOD
    assert Settings.from_env({"WEBHOOK_SECRET": f" {GOOD} "}).webhook_secret == f" {GOOD} "  # bytes GitHub signs


@pytest.mark.parametrize("blank", ["", " ", "\t\n"])
def test_a_blank_secret_counts_as_unset(blank: str) -> None:
    assert Settings.from_env({"WEBHOOK_SECRET": blank}).webhook_secret == ""  # setup mode, no App yet
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET is required"):
        Settings.from_env({"WEBHOOK_SECRET": blank, "APP_ID": "7"})


@pytest.mark.parametrize(
    "path",
    [
        "/hooks/<int:id>",
        "/hooks/<name>",
        "/a<b",
        "/a>b",
        "/hooks/<path:rest>",
        "/a b",
        "/a?x=1",
        "/a#frag",
        "/a/../b",
        "/a/./b",
        "/a%2fb",
        "//hooks",
        "/hooks//x",
        "/é",
    ],
)
def test_a_path_that_is_not_literal_is_refused_by_name(path: str) -> None:
    with pytest.raises(SettingsError, match="WEBHOOK_PATH"):
        Settings.from_env({"WEBHOOK_SECRET": GOOD, "WEBHOOK_PATH": path})


@pytest.mark.parametrize("path", ["/", "/hooks", "/hooks/", "/api/github/webhooks", "/a-b_c.d~e/F9"])
def test_a_literal_path_serves_deliveries(path: str) -> None:
    settings = Settings.from_env({"WEBHOOK_SECRET": GOOD, "WEBHOOK_PATH": path})
    assert settings.webhook_path == path
    client = create_app(settings, queue=InMemoryQueue()).test_client()
    answer = client.post(path, data=b"{}", headers={"X-Hub-Signature-256": "sha256=00"})
    assert answer.status_code == 401  # the webhook view answered (not a 404/405 from another route)


@pytest.mark.parametrize(("name", "value"), [("WEBHOOK_PATH", "/hooks/<int:id>"), ("WEBHOOK_SECRET", "x")])
def test_the_cli_names_the_setting_and_exits_2(
    name: str, value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env from the working directory
    for other in ("WEBHOOK_SECRET", "WEBHOOK_PATH", "APP_ID", "PRIVATE_KEY", "PRIVATE_KEY_PATH", "REDIS_URL"):
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv("WEBHOOK_SECRET", GOOD)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv(name, value)
    assert cli.main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ecr-cache-bot: {name}") and "Traceback" not in err
    assert len(err.splitlines()) == 1
