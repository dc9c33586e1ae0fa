"""Command line: `ecr-cache-bot plan|apply|check PATH` and the process commands (`serve`, `worker`, ...)."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.metadata
import io
import shutil
import sys
from pathlib import Path
from typing import Any

from bot.cli.local_repo import LocalRepoError, read_snapshot_checked, read_text, why_unreadable, write_edits
from bot.cli.replay import add_replay_command
from bot.core import budget, discover, planner
from bot.core.findings import Code
from bot.core.model import Finding, Options, Plan
from bot.core.repo_config import CONFIG_PATH, ConfigError, merge_configs, options_from_mapping, parse_repo_config
from bot.render.report import (
    Style,
    error_json,
    github_annotations,
    json_report,
    plan_status,
    summary,
    text_report,
    unified_diff,
)
from bot.settings import no_color

EXIT_OK, EXIT_CHANGES, EXIT_ERROR, EXIT_NOTHING, EXIT_DISABLED = 0, 1, 2, 3, 4
DISTRIBUTION = "ecr-cache-bot"


def installed_version() -> str:
    """The version of the installed distribution (its metadata, not the source tree)."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _add_plan_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="local checkout of the repository")
    parser.add_argument("--region", help="AWS region of the cache repository")
    parser.add_argument("--cache-repository", help="ECR repository that holds the layer cache")
    parser.add_argument("--cache-tag", help="cache tag (default: cache)")
    parser.add_argument("--mode", choices=["max", "min"], help="BuildKit cache mode (default: max)")
    parser.add_argument("--lifecycle-days", type=int, help="days before idle branch caches expire")
    parser.add_argument("--builder-image", help="BuildKit image for the docker-container builder")
    parser.add_argument("--buildspec", action="append", help="buildspec path or glob (repeatable)")
    parser.add_argument("--dockerfile", action="append", help="Dockerfile path or glob (repeatable)")
    parser.add_argument("--no-reorder", action="store_true", help="do not reorder Dockerfiles")
    parser.add_argument("--no-dockerignore", action="store_true", help="do not create or extend .dockerignore")
    parser.add_argument(
        "--cache-errors",
        choices=["ignore", "fatal"],
        help="fatal: a failed cache export or builder fails the build (default: ignore)",
    )
    parser.add_argument(
        "--org-config",
        metavar="PATH",
        help="organization defaults (its .github repository's .github/ecr-cache.yml); the repo "
        "config overrides them key by key, as the App does",
    )


def _flag_overrides(args: argparse.Namespace) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for key in ("region", "cache_repository", "cache_tag", "mode", "lifecycle_days", "builder_image", "cache_errors"):
        value = getattr(args, key)
        if value is not None:
            raw[key] = value
    if args.buildspec:
        raw["buildspecs"] = args.buildspec
    if args.dockerfile:
        raw["dockerfiles"] = args.dockerfile
    if args.no_reorder:
        raw["reorder"] = False
    if args.no_dockerignore:
        raw["dockerignore"] = False
    return raw


def load_options(root: Path, args: argparse.Namespace) -> Options:
    """Repo config merged with command-line flags (flags win); ConfigError names the bad key."""
    if (root / CONFIG_PATH).exists() or (root / CONFIG_PATH).is_symlink():
        why = why_unreadable(root, CONFIG_PATH)
        if why is not None:
            raise ConfigError(f"{CONFIG_PATH} {why}")
    org_config = getattr(args, "org_config", None)
    if org_config:
        try:
            org_text = Path(org_config).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--org-config {org_config}: {getattr(exc, 'strerror', None) or exc}") from None
        options, findings = merge_configs(org_text, read_text(root, CONFIG_PATH), org_config)
    else:
        options, findings = parse_repo_config(read_text(root, CONFIG_PATH))
    errors = [f.message for f in findings if f.level == "error"]
    if errors:
        raise ConfigError("; ".join(errors), tuple(errors))
    try:
        return options_from_mapping(_flag_overrides(args), dataclasses.replace(options))
    except ConfigError as exc:
        problems = tuple(f"command-line flag: {p}" for p in exc.problems)
        raise ConfigError("; ".join(problems), problems) from exc


def _unmatched_flags(args: argparse.Namespace, paths: tuple[str, ...]) -> list[str]:
    """`--buildspec`/`--dockerfile` values that name no file: a typo, not a request for nothing."""
    return [
        f"command-line flag: `--{flag} {pattern}` matches no file of the checkout"
        for flag, patterns in (("buildspec", args.buildspec), ("dockerfile", args.dockerfile))
        for pattern in patterns or ()
        if not discover.configured_matches(paths, pattern)
    ]


def _style() -> Style:
    """Colour and wrapping only on a terminal; any non-empty NO_COLOR turns colour off (https://no-color.org)."""
    try:
        tty = sys.stdout.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not tty:
        # Piped or redirected: plain, and one line per finding so grep and diff tools see it whole.
        return Style()
    return Style(colour=not no_color(), width=shutil.get_terminal_size().columns)


_EXIT_OF_STATUS = {
    "disabled": EXIT_DISABLED,
    "changes": EXIT_CHANGES,
    "nothing-found": EXIT_NOTHING,
    "set-up": EXIT_OK,
    "not-planned": EXIT_ERROR,
}


def _check_line(plan: Plan) -> str:
    """One line that says what was found (README, "Command line")."""
    status = plan_status(plan)
    if status == "not-planned":
        return "Not planned: the repository is past the planning budget (see the findings).\n"
    if status == "disabled":
        return f"Disabled: `enabled: false` in {CONFIG_PATH}; nothing was checked.\n"
    if status == "changes":
        return f"Not set up: {len(plan.edits)} file(s) would change: {', '.join(e.path for e in plan.edits)}\n"
    if status == "nothing-found":
        where = f"no `docker build` in {', '.join(plan.buildspecs)}" if plan.buildspecs else "no CodeBuild buildspec"
        dockerfiles = f", {len(plan.dockerfiles)} Dockerfile(s) need no change" if plan.dockerfiles else ""
        return f"No CodeBuild Docker build found ({where}{dockerfiles}): nothing to set up.\n"
    cached = sum(1 for b in plan.builds if b.cached)
    if cached == len(plan.builds):
        return f"Already set up: {cached} CodeBuild Docker build(s) use the registry cache; no change needed.\n"
    return (
        f"Nothing to change: {cached} of {len(plan.builds)} CodeBuild Docker builds use the "
        f"registry cache; the others are left as they are (see `ecr-cache-bot plan`).\n"
    )


def _check(plan: Plan, args: argparse.Namespace) -> int:
    """The check's output (a line, `--json` or annotations plus the line) and the exit code of the state."""
    code = _EXIT_OF_STATUS[plan_status(plan)]
    if args.json:
        sys.stdout.write(json_report(plan, exit_code=code))
        return code
    if args.github_annotations:
        sys.stdout.write(github_annotations(plan.findings))
    sys.stdout.write(_check_line(plan))
    return code


def _plan_output(plan: Plan, args: argparse.Namespace) -> None:
    """`plan`: the summary, the diff and the report (or one of them, or the `--json` document)."""
    if args.json:
        sys.stdout.write(json_report(plan))
        return
    style = _style()
    if not args.report_only and not args.diff_only:
        sys.stdout.write(summary(plan, style))
    if not args.report_only:
        sys.stdout.write(unified_diff(plan, style))
    if not args.diff_only:
        if args.report_only:
            sys.stdout.write(summary(plan, style))
        sys.stdout.write(text_report(plan, style))


def _plan_command(args: argparse.Namespace) -> int:
    root = Path(args.path)
    options = load_options(root, args)
    snapshot, unread = read_snapshot_checked(root, options)
    unmatched = _unmatched_flags(args, snapshot.paths)
    if unmatched:
        raise ConfigError("; ".join(unmatched), tuple(unmatched))
    links = [u for u in unread if "symbolic link" in u]
    for line in links[:10]:
        sys.stderr.write(f"ecr-cache-bot: not read: {line}\n")
    broken = [u for u in unread if u not in links]
    if broken:
        # A file the plan depends on was skipped: saying "already set up" (or writing half a plan) would mislead.
        raise LocalRepoError("not planned, these files could not be read: " + "; ".join(broken[:10]))
    result = planner.plan(snapshot, options)
    over = budget.refusals(result.findings)
    if over:
        # Too large to plan: nothing was decided, so no command may say "set up" or write (exit 2, an error).
        if args.command == "plan":
            sys.stdout.write(json_report(result) if args.json else summary(result) + text_report(result))
        elif args.command == "check" and (args.json or args.github_annotations):
            _check(result, args)
        for finding in over:
            sys.stderr.write(f"ecr-cache-bot: {finding.path}: {finding.message}\n")
        return EXIT_ERROR
    if args.command == "plan":
        _plan_output(result, args)
        return EXIT_OK
    if args.command == "apply":
        written = write_edits(root, result.edits)
        sys.stdout.write(text_report(result, _style()))
        sys.stdout.write(f"Wrote {len(written)} file(s): {', '.join(written) or 'none'}\n")
        return EXIT_OK
    for finding in result.findings:
        if finding.path == CONFIG_PATH and finding.level != "info":
            sys.stderr.write(f"ecr-cache-bot: {finding.level}: {finding.message}\n")
    return _check(result, args)


def _config_findings(problems: tuple[str, ...]) -> tuple[Finding, ...]:
    """Config problems as error findings: on the config file, or on no file for a command-line flag."""
    return tuple(
        Finding("" if p.startswith("command-line flag") else CONFIG_PATH, "error", Code.INVALID_CONFIG, p)
        for p in problems
    )


def _machine_output(args: argparse.Namespace, errors: tuple[str, ...], findings: tuple[Finding, ...]) -> None:
    """An error also as the `--json` document or as annotations on stdout (stderr says it for people)."""
    if getattr(args, "json", False):
        sys.stdout.write(error_json(errors, findings, EXIT_ERROR))
    elif getattr(args, "github_annotations", False):
        sys.stdout.write(github_annotations(findings))


def _runtime_commands() -> Any:
    """`bot.cli.processes.add_runtime_commands` (serve, worker, ...) when the runtime is installed."""
    try:
        module = importlib.import_module("bot.cli.processes")
    except ImportError:
        return None
    return getattr(module, "add_runtime_commands", None)


# Commands that never need the process runtime: `plan` must not import Flask, huey or Redis.
_LIGHT_COMMANDS = frozenset({"plan", "apply", "check", "replay"})


def _command_word(argv: list[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is not an option), if any."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(runtime: bool = True) -> argparse.ArgumentParser:
    """The argument parser of every subcommand (the process commands only with ``runtime``)."""
    parser = argparse.ArgumentParser(
        prog="ecr-cache-bot",
        description="Make Docker builds on AWS CodeBuild fast: BuildKit layer cache in Amazon ECR.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    plan_parser = sub.add_parser("plan", help="print the diff and report for a local checkout")
    _add_plan_options(plan_parser)
    shown = plan_parser.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="machine-readable output")
    shown.add_argument("--diff-only", action="store_true", help="print only the diff (for `git apply`)")
    shown.add_argument("--report-only", action="store_true", help="print the summary and report, not the diff")
    apply_parser = sub.add_parser("apply", help="write the planned changes into the checkout")
    _add_plan_options(apply_parser)
    check_parser = sub.add_parser(
        "check",
        help="exit 0 when set up, 1 when changes would be made, 2 on error, "
        "3 when no CodeBuild Docker build is found, 4 when disabled by the repo config",
    )
    _add_plan_options(check_parser)
    check_shown = check_parser.add_mutually_exclusive_group()
    check_shown.add_argument("--json", action="store_true", help="the `plan --json` document with `exit_code`")
    check_shown.add_argument(
        "--github-annotations",
        action="store_true",
        help="print the findings as GitHub workflow commands (annotations on their lines)",
    )
    add_replay_command(sub)
    add_runtime = _runtime_commands() if runtime else None
    if add_runtime is not None:
        add_runtime(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `ecr-cache-bot` console script."""
    for stream in (sys.stdout, sys.stderr):
        # File names and texts keep undecodable bytes as surrogates: print them back as the same bytes.
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="surrogateescape")
    words = sys.argv[1:] if argv is None else argv
    parser = build_parser(runtime=_command_word(words) not in _LIGHT_COMMANDS)
    args = parser.parse_args(words)
    if args.command in ("plan", "apply", "check"):
        try:
            return _plan_command(args)
        except ConfigError as exc:
            problems = exc.problems or (str(exc),)
            _machine_output(args, problems, _config_findings(problems))
            if len(exc.problems) > 1:
                listed = "".join(f"\n  - {p}" for p in exc.problems)
                sys.stderr.write(f"ecr-cache-bot: invalid configuration ({len(exc.problems)} problems):{listed}\n")
            else:
                sys.stderr.write(f"ecr-cache-bot: invalid configuration: {exc}\n")
            return EXIT_ERROR
        except (LocalRepoError, OSError) as exc:
            sys.stderr.write(f"ecr-cache-bot: {exc}\n")
            _machine_output(args, (str(exc),), (Finding("", "error", Code.NOT_PLANNED, str(exc)),))
            return EXIT_ERROR
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.error(f"unknown command {args.command!r}")
    return int(handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
