"""A local Go module proxy on 127.0.0.1, filled from Debian's golang-*-dev packages.

proxy.golang.org is not reachable from this machine, the Debian mirror is: the sources Debian ships
are served in the GOPROXY protocol (https://go.dev/ref/mod#goproxy-protocol) so the Go sample app
has a real ``go.mod``/``go.sum`` and a real ``go mod download`` step.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
import zipfile
from pathlib import Path

from infra import WORK, log, run

GOPROXY_ADDR = "127.0.0.1:5001"
GOPROXY_URL = f"http://{GOPROXY_ADDR}"
# (Debian package, module path, version): every one has no requirements of its own.
MODULES = (
    ("golang-github-go-chi-chi-dev", "github.com/go-chi/chi/v5", "v5.0.7"),
    ("golang-github-google-uuid-dev", "github.com/google/uuid", "v1.3.0"),
    ("golang-github-burntsushi-toml-dev", "github.com/BurntSushi/toml", "v1.2.0"),
)


def escape(path: str) -> str:
    """Module path escaping of the GOPROXY protocol: upper-case letters become ``!`` + lower case."""
    return "".join(f"!{c.lower()}" if c.isupper() else c for c in path)


def _source_dir(root: Path, module: str) -> Path:
    """Where a golang-*-dev package puts a module's source (without a /vN suffix)."""
    parts = module.split("/")
    if parts[-1].startswith("v") and parts[-1][1:].isdigit():
        parts = parts[:-1]
    return root / "usr/share/gocode/src" / "/".join(parts)


def _zip_module(src: Path, module: str, version: str, dest: Path) -> None:
    """Write the module zip: every file under ``module@version/``, nested modules left out."""
    nested = {p.parent for p in src.rglob("go.mod") if p.parent != src}
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(src.rglob("*")):
            if not path.is_file() or path.is_symlink() or any(n in path.parents for n in nested):
                continue
            archive.write(path, f"{module}@{version}/{path.relative_to(src).as_posix()}")


def build_tree(tree: Path) -> None:
    """Download the Debian packages and lay out the proxy's files."""
    debs = WORK / "godeb"
    debs.mkdir(parents=True, exist_ok=True)
    for package, module, version in MODULES:
        out = tree / escape(module) / "@v"
        if (out / f"{version}.zip").exists():
            continue
        log(f"go proxy: {module}@{version} from Debian's {package}")
        run(["apt-get", "download", package], cwd=debs)
        deb = next(debs.glob(f"{package}_*.deb"))
        extracted = debs / package
        shutil.rmtree(extracted, ignore_errors=True)
        run(["dpkg-deb", "-x", str(deb), str(extracted)])
        src = _source_dir(extracted, module)
        out.mkdir(parents=True, exist_ok=True)
        (out / "list").write_text(f"{version}\n")
        (out / f"{version}.info").write_text(json.dumps({"Version": version, "Time": "2023-01-01T00:00:00Z"}))
        shutil.copy2(src / "go.mod", out / f"{version}.mod")
        _zip_module(src, module, version, out / f"{version}.zip")


def proxy_up() -> bool:
    """True when the proxy answers."""
    module, version = escape(MODULES[0][1]), MODULES[0][2]
    try:
        with urllib.request.urlopen(f"{GOPROXY_URL}/{module}/@v/{version}.info", timeout=3) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def ensure_goproxy() -> None:
    """Build the module tree and serve it on 127.0.0.1:5001 unless already served."""
    tree = WORK / "goproxy"
    build_tree(tree)
    if proxy_up():
        return
    log(f"starting the local Go module proxy on {GOPROXY_ADDR}")
    with open(WORK / "goproxy.log", "ab") as out:
        subprocess.Popen(
            ["python3", "-m", "http.server", "--bind", "127.0.0.1", "5001", "--directory", str(tree)],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    for _ in range(50):
        if proxy_up():
            return
        time.sleep(0.2)
    raise RuntimeError(f"Go proxy did not start, see {WORK / 'goproxy.log'}")
