"""Logging setup: readable text by default, JSON lines with LOG_FORMAT=json, secrets redacted."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

from pythonjsonlogger.json import JsonFormatter

_URI_CREDENTIALS = re.compile(r"(mongodb(?:\+srv)?://)([^@/\s]+)@")
# Anything shaped like a Discord bot token (base64 user id . timestamp . hmac), configured or not.
_DISCORD_TOKEN = re.compile(r"\b[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}")
# Interaction and webhook tokens in REST paths (discord.py logs request URLs at DEBUG).
_URL_TOKEN = re.compile(r"(/(?:interactions|webhooks)/\d+/)[A-Za-z0-9_.-]{20,}")
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class Redactor:
    """Removes secrets (the token, database credentials) from text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Also as they appear inside a JSON log line (quotes, backslashes, non-ASCII escaped);
        # longest first, so a URI goes before the password inside it.
        forms = {form for s in secrets if s and len(s) >= 4 for form in (s, json.dumps(s)[1:-1])}
        self._secrets = sorted(forms, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = _URI_CREDENTIALS.sub(r"\1***@", text)
        text = _DISCORD_TOKEN.sub("***", text)
        return _URL_TOKEN.sub(r"\1***", text)


def uri_secrets(uri: str) -> list[str]:
    """The URI and its password, as written and percent-decoded (a driver error may quote either)."""
    found = [uri]
    try:
        password = urlsplit(uri).password
    except ValueError:
        password = None
    if password:
        found += [password, unquote(password)]
    return found


def secrets_of(settings: Any) -> list[str]:
    """Every secret in the settings: the Discord token, the MongoDB URI and the proxy URL, with
    their passwords."""
    found: list[str] = []
    token = getattr(settings, "discord_token", None)
    if token is not None:
        found.append(token.get_secret_value())
    uri = getattr(settings, "mongodb_uri", None)
    if uri is not None:
        found += uri_secrets(uri.get_secret_value())
    proxy = getattr(settings, "discord_proxy", None)
    if proxy is not None:
        found += uri_secrets(proxy.get_secret_value())
    return found


class RedactingFormatter(logging.Formatter):
    """Formats with the wrapped formatter, then redacts the whole line, tracebacks included."""

    def __init__(self, inner: logging.Formatter, redactor: Redactor) -> None:
        super().__init__()
        self.inner = inner
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor.redact(self.inner.format(record))


def setup_logging(level: str = "INFO", fmt: str = "text", secrets: Iterable[str] = ()) -> None:
    """Configure the root logger once: one handler on stderr, redaction, library noise turned down."""
    handler = logging.StreamHandler(sys.stderr)
    inner: logging.Formatter
    if fmt == "json":
        inner = JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    else:
        inner = logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(RedactingFormatter(inner, Redactor(secrets)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("apscheduler", "pymongo", "asyncio", "discord.gateway"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.WARNING))
