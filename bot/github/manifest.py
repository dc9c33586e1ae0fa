"""The GitHub App manifest this bot registers itself with, and the GitHub URLs of the manifest flow.

https://docs.github.com/en/apps/sharing-github-apps/registering-a-github-app-from-a-manifest
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

# What the jobs do: read and write files and branches (contents), open and edit the pull request
# (pull_requests), comment on issues and pull requests (issues), and list repositories and read a commenter's
# permission (metadata, which GitHub grants every App read access to anyway).
PERMISSIONS: dict[str, str] = {
    "contents": "write",
    "pull_requests": "write",
    "issues": "write",
    "metadata": "read",
}
# Events an App can subscribe to; `installation` and `installation_repositories` are sent to every App and
# cannot be chosen (https://docs.github.com/en/webhooks/webhook-events-and-payloads#installation).
EVENTS: tuple[str, ...] = ("push", "issue_comment", "pull_request")
# How the setup page names them (GitHub's labels on the App settings page).
PERMISSION_LABELS: dict[str, str] = {
    "contents": "Contents",
    "pull_requests": "Pull requests",
    "issues": "Issues",
    "metadata": "Metadata",
}
ACCESS_LABELS: dict[str, str] = {"write": "read and write", "read": "read"}
EVENT_LABELS: dict[str, str] = {"push": "Push", "issue_comment": "Issue comment", "pull_request": "Pull request"}
ALWAYS_SENT_EVENTS: tuple[str, ...] = ("Installation", "Installation repositories")

DEFAULT_APP_NAME = "ecr-cache-bot"
DESCRIPTION = (
    "Opens one pull request per repository that gives AWS CodeBuild Docker builds a BuildKit layer cache in Amazon ECR."
)
CALLBACK_PATH = "/setup/github-app/callback"
# A GitHub login: letters, digits and single hyphens, not at either end, at most 39 characters.
_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")


def build_manifest(base_url: str, webhook_path: str, name: str = DEFAULT_APP_NAME) -> dict[str, Any]:
    """The manifest posted to GitHub; ``base_url`` is this server's origin (scheme://host[:port])."""
    base = base_url.rstrip("/")
    return {
        "name": name,
        "url": base + "/",
        "description": DESCRIPTION,
        "hook_attributes": {"url": base + webhook_path, "active": True},
        "redirect_url": base + CALLBACK_PATH,
        "public": False,
        "default_permissions": dict(PERMISSIONS),
        "default_events": list(EVENTS),
    }


def valid_login(name: str) -> bool:
    """True when ``name`` can be a GitHub organization login."""
    return bool(_LOGIN.match(name))


def creation_url(github_url: str, state: str, organization: str | None = None) -> str:
    """Where the manifest form posts: the personal or the organization's "new App" page, with the state."""
    owner = f"/organizations/{quote(organization, safe='')}" if organization else ""
    return f"{github_url.rstrip('/')}{owner}/settings/apps/new?state={quote(state, safe='')}"


def install_url(html_url: str) -> str:
    """The page that installs the App on accounts and repositories."""
    return html_url.rstrip("/") + "/installations/new"


def without_userinfo(url: str) -> str:
    """``url`` without any ``user:password@`` part, for display."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def origin(url: str) -> str:
    """scheme://host[:port] of ``url`` (for a Content-Security-Policy source)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
