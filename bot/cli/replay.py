"""`ecr-cache-bot replay`: sign a saved webhook payload and deliver it to a running app.

GitHub never redelivers a webhook by itself; an operator who saved a payload (or copied one from the
App's "Recent Deliveries" page) can hand it to the app again with the same signature scheme.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from bot.github.credentials import webhook_secret
from bot.settings import Settings, SettingsError


def sign(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` header value GitHub sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(url: str, secret: str, event: str, body: bytes, delivery_id: str, timeout: float = 10.0) -> int:
    """POST one signed delivery; return the HTTP status the app answered."""
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id,
            "X-Hub-Signature-256": sign(secret, body),
            "User-Agent": "ecr-cache-bot-replay",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def add_replay_command(subparsers: Any) -> None:
    """Register `replay EVENT PAYLOAD`."""
    parser = subparsers.add_parser("replay", help="sign a saved webhook payload and deliver it to a running app")
    parser.add_argument("event", help="the X-GitHub-Event name, e.g. push or issue_comment")
    parser.add_argument("payload", type=Path, help="JSON file with the webhook payload")
    parser.add_argument("--delivery-id", help="X-GitHub-Delivery (default: a new UUID; reuse one to test dedupe)")
    parser.add_argument("--url", help="webhook URL (default: http://127.0.0.1:$PORT$WEBHOOK_PATH)")
    parser.set_defaults(handler=replay_command)


def replay_command(args: argparse.Namespace) -> int:
    """Exit 0 when the app accepted (2xx), 1 when it refused, 2 on a local error."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        sys.stderr.write(f"ecr-cache-bot: {exc}\n")
        return 2
    try:
        body = args.payload.read_bytes()
        json.loads(body)
    except OSError as exc:
        sys.stderr.write(f"ecr-cache-bot: cannot read {args.payload}: {exc.strerror}\n")
        return 2
    except ValueError as exc:
        sys.stderr.write(f"ecr-cache-bot: {args.payload} is not JSON: {exc}\n")
        return 2
    secret = webhook_secret(settings)
    if secret is None:
        sys.stderr.write("ecr-cache-bot: no webhook secret to sign with: set WEBHOOK_SECRET or register the App\n")
        return 2
    url = args.url or f"http://127.0.0.1:{settings.port}{settings.webhook_path}"
    delivery_id = args.delivery_id or str(uuid.uuid4())
    try:
        status = deliver(url, secret, args.event, body, delivery_id)
    except (urllib.error.URLError, OSError) as exc:
        sys.stderr.write(f"ecr-cache-bot: cannot reach {url}: {getattr(exc, 'reason', exc)}\n")
        return 2
    sys.stdout.write(f"{args.event} delivery {delivery_id}: HTTP {status}\n")
    return 0 if 200 <= status < 300 else 1
