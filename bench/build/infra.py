"""Idempotent machine setup for the build benchmark: tools, local registry, base images."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "scratch"
REGISTRY = "127.0.0.1:5000"
DEBIAN_IMAGE = f"{REGISTRY}/bench/debian:bookworm-slim"
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

# Toolchain images: built once from the debootstrapped Debian image, used as FROM by the sample apps,
# so installing python3/nodejs/golang is not part of any measured build.
TOOLCHAINS: dict[str, tuple[str, list[str], dict[str, str]]] = {
    "python": (
        f"{REGISTRY}/bench/python:3.11-slim-bookworm",
        ["python3", "python3-pip"],
        {
            # Debian marks the system Python as externally managed (PEP 668); images commonly opt out.
            "PIP_BREAK_SYSTEM_PACKAGES": "1",
            "PIP_ROOT_USER_ACTION": "ignore",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_CERT": str(HOST_CA_BUNDLE),
        },
    ),
    "node": (
        f"{REGISTRY}/bench/node:18-slim-bookworm-npm10",
        ["nodejs"],
        {
            "NODE_EXTRA_CA_CERTS": str(HOST_CA_BUNDLE),
            "npm_config_update_notifier": "false",
            "npm_config_fund": "false",
            "npm_config_audit": "false",
        },
    ),
    "go": (
        f"{REGISTRY}/bench/golang:1.19-slim-bookworm-localproxy",
        ["golang-go"],
        {
            # proxy.golang.org is unreachable here: goproxy.py serves Debian's Go sources on 127.0.0.1.
            "GOPROXY": "http://127.0.0.1:5001",
            "GOSUMDB": "off",
            "CGO_ENABLED": "0",
        },
    ),
}


def log(message: str) -> None:
    """Progress line on stderr (stdout carries the results table)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a command, fail loudly with its output."""
    result = subprocess.run(cmd, text=True, capture_output=True, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise RuntimeError(
            f"command failed ({result.returncode}): {' '.join(cmd)}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def proxy_env() -> dict[str, str]:
    """The host's proxy variables (none on some machines): passed to builds as build args."""
    return {k: v for k, v in os.environ.items() if k.lower() in {"http_proxy", "https_proxy", "no_proxy", "all_proxy"}}


def ensure_packages() -> None:
    """apt-get install buildah, docker-registry and debootstrap when missing."""
    missing = [
        p
        for p, exe in (("buildah", "buildah"), ("docker-registry", "docker-registry"), ("debootstrap", "debootstrap"))
        if shutil.which(exe) is None
    ]
    if missing:
        log(f"installing {missing}")
        run(["apt-get", "update"])
        run(["apt-get", "install", "-y", *missing], env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def registry_up() -> bool:
    """True when a registry answers on 127.0.0.1:5000."""
    try:
        with urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=3) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def ensure_registry() -> None:
    """Start Debian's docker-registry on 127.0.0.1:5000 (storage in scratch/) unless one answers."""
    if registry_up():
        return
    storage = WORK / "registry"
    storage.mkdir(parents=True, exist_ok=True)
    config = WORK / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {REGISTRY}\n"
    )
    log("starting docker-registry on 127.0.0.1:5000")
    with open(WORK / "registry.log", "ab") as out:
        subprocess.Popen(
            ["docker-registry", "serve", str(config)],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    for _ in range(50):
        if registry_up():
            return
        time.sleep(0.2)
    raise RuntimeError(f"registry did not start, see {WORK / 'registry.log'}")


def image_exists(ref: str) -> bool:
    """True when the local registry has ``ref`` (repo:tag)."""
    repo, tag = ref.removeprefix(f"{REGISTRY}/").rsplit(":", 1)
    req = urllib.request.Request(
        f"http://{REGISTRY}/v2/{repo}/manifests/{tag}",
        method="HEAD",
        headers={
            "Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def apt_mirror() -> str:
    """The Debian mirror this machine's apt is configured with."""
    for source in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if not source.is_file():
            continue
        for line in source.read_text().splitlines():
            words = line.split()
            if line.startswith("URIs:") and words[1].rstrip("/").endswith("/debian"):
                return words[1]
            if words[:1] == ["deb"] and words[-2:-1] == ["bookworm"]:
                return words[1]
    raise RuntimeError("no Debian mirror found in /etc/apt/sources.list*")


ENGINE_ROOT = WORK / "engine"
ENGINE_TMPFS_SIZE = "8g"


def engine_tmpfs_mounted() -> bool:
    """True when ENGINE_ROOT is a tmpfs mount point."""
    target = str(ENGINE_ROOT.resolve())
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[1] == target and fields[2] == "tmpfs":
            return True
    return False


def mount_engine_tmpfs() -> None:
    """Put the measured builds' engine storage on a tmpfs.

    This sandbox's disk creates files slowly and unevenly (strace: `openat` 0.6 ms on average; the same
    167 MB base-image pull took 1.6 s to 8.0 s within an hour, 7 s of it in the kernel). A CodeBuild host
    writes image layers to local SSD, so a tmpfs is the closer model; the registry (the network side) stays
    on disk. Every variant builds on the same tmpfs.
    """
    ENGINE_ROOT.mkdir(parents=True, exist_ok=True)
    if not engine_tmpfs_mounted():
        run(["mount", "-t", "tmpfs", "-o", f"size={ENGINE_TMPFS_SIZE}", "tmpfs", str(ENGINE_ROOT)])


def unmount_engine_tmpfs() -> None:
    """Remove the tmpfs again (its content is gone with it)."""
    if engine_tmpfs_mounted():
        subprocess.run(["umount", "-R", str(ENGINE_ROOT)], capture_output=True)


def engine_args(root: Path) -> list[str]:
    """Global buildah flags for one private storage root."""
    return ["buildah", "--root", str(root / "storage"), "--runroot", str(root / "run"), "--storage-driver", "overlay"]


def wipe_engine(root: Path) -> None:
    """Remove every container and image of a storage root, then the root itself."""
    if not root.exists():
        return
    base = engine_args(root)
    subprocess.run([*base, "rm", "--all"], capture_output=True)
    subprocess.run([*base, "rmi", "--all", "--force"], capture_output=True)
    subprocess.run(["umount", "-R", str(root / "storage" / "overlay")], capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


# The same exclusions as Docker's official debian:*-slim images, so the FROM pull costs what a slim
# base costs on CodeBuild: https://github.com/debuerreotype/debuerreotype/blob/master/scripts/.slimify-excludes
SLIM_DPKG_CFG = """path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
"""


def slim(rootfs: Path) -> None:
    """Drop apt lists and caches, docs, man pages and locales; keep them out of later installs too."""
    for sub in ("var/lib/apt/lists", "var/cache/apt", "usr/share/man", "usr/share/info", "usr/share/lintian"):
        shutil.rmtree(rootfs / sub, ignore_errors=True)
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
    (rootfs / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
    for locale in (rootfs / "usr/share/locale").glob("*"):
        if locale.name != "locale.alias":
            shutil.rmtree(locale, ignore_errors=True)
    for doc in (rootfs / "usr/share/doc").glob("*"):
        for item in doc.glob("*"):
            if item.name != "copyright":
                shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink()
    (rootfs / "etc/dpkg/dpkg.cfg.d").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/dpkg/dpkg.cfg.d/docker-slim").write_text(SLIM_DPKG_CFG)


def ensure_debian_image() -> None:
    """debootstrap bookworm (minbase), add the host's CA certificates, push it as the base image."""
    if image_exists(DEBIAN_IMAGE):
        return
    rootfs = WORK / "rootfs-bookworm"
    if not (rootfs / "etc" / "debian_version").exists():
        log(f"debootstrap bookworm from {apt_mirror()}")
        shutil.rmtree(rootfs, ignore_errors=True)
        run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), apt_mirror()])
    slim(rootfs)
    # The sandbox intercepts TLS: the image must trust the same extra CAs as the host.
    (rootfs / "usr/local/share/ca-certificates").mkdir(parents=True, exist_ok=True)
    for cert in HOST_CA_DIR.glob("*.crt"):
        shutil.copy2(cert, rootfs / "usr/local/share/ca-certificates" / cert.name)
    (rootfs / "etc/ssl/certs").mkdir(parents=True, exist_ok=True)
    shutil.copy2(HOST_CA_BUNDLE, rootfs / "etc/ssl/certs/ca-certificates.crt")
    engine = WORK / "engine-base"
    wipe_engine(engine)
    base = engine_args(engine)
    try:
        ctr = run([*base, "from", "scratch"]).stdout.strip()
        mnt = run([*base, "mount", ctr]).stdout.strip()
        run(["cp", "-a", f"{rootfs}/.", mnt])
        run([*base, "umount", ctr])
        run(
            [
                *base,
                "config",
                "--env",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "--cmd",
                "/bin/bash",
                "--os",
                "linux",
                "--arch",
                "amd64",
                ctr,
            ]
        )
        run([*base, "commit", "--tls-verify=false", ctr, f"docker://{DEBIAN_IMAGE}"])
        log(f"pushed {DEBIAN_IMAGE}")
    finally:
        wipe_engine(engine)


# Debian's `npm` package drags in ~400 node-* packages (a 296 MB layer); official node images bundle
# npm itself instead, so the FROM pull costs about what node:*-slim costs. npm 10.8 supports Node 18.17+.
NPM_VERSION = "10.8.2"


def bundle_npm(ctx: Path) -> str:
    """Fetch npm's own tarball from the npm registry into ``ctx``; return the lines that install it."""
    run(["npm", "pack", f"npm@{NPM_VERSION}", "--pack-destination", str(ctx)], cwd=ctx)
    (ctx / f"npm-{NPM_VERSION}.tgz").rename(ctx / "npm.tgz")
    return (
        "COPY npm.tgz /tmp/npm.tgz\n"
        "RUN mkdir -p /usr/local/lib/node_modules/npm"
        " && tar -xzf /tmp/npm.tgz --strip-components=1 -C /usr/local/lib/node_modules/npm && rm /tmp/npm.tgz"
        " && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm"
        " && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx && npm --version\n"
    )


def ensure_toolchain_images() -> None:
    """Build python/node/go toolchain images on the Debian image once and push them."""
    for name, (ref, packages, env) in TOOLCHAINS.items():
        if image_exists(ref):
            continue
        ctx = WORK / f"toolchain-{name}"
        shutil.rmtree(ctx, ignore_errors=True)
        (ctx / "certs").mkdir(parents=True)
        for cert in HOST_CA_DIR.glob("*.crt"):
            shutil.copy2(cert, ctx / "certs" / cert.name)
        shutil.copy2(HOST_CA_BUNDLE, ctx / "ca-certificates.crt")
        env_lines = "".join(f'ENV {k}="{v}"\n' for k, v in env.items())
        if name == "node":
            env_lines += bundle_npm(ctx)
        (ctx / "Containerfile").write_text(
            f"FROM {DEBIAN_IMAGE}\n"
            "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends"
            f" ca-certificates {' '.join(packages)} && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin\n"
            "COPY certs/ /usr/local/share/ca-certificates/\n"
            "RUN update-ca-certificates\n"
            "COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n"
            f"{env_lines}"
        )
        engine = WORK / f"engine-{name}"
        wipe_engine(engine)
        log(f"building toolchain image {ref}")
        try:
            args = [f"--build-arg={k}={v}" for k, v in proxy_env().items()]
            run(
                [
                    *engine_args(engine),
                    "bud",
                    "--isolation",
                    "chroot",
                    "--tls-verify=false",
                    *args,
                    "-f",
                    str(ctx / "Containerfile"),
                    "-t",
                    ref,
                    str(ctx),
                ]
            )
            run([*engine_args(engine), "push", "--tls-verify=false", ref, f"docker://{ref}"])
        finally:
            wipe_engine(engine)


def ensure_all() -> None:
    """Everything the measured builds need, idempotently."""
    WORK.mkdir(parents=True, exist_ok=True)
    ensure_packages()
    ensure_registry()
    ensure_debian_image()
    ensure_toolchain_images()
