"""Logging setup: readable text by default, JSON lines with LOG_FORMAT=json, secrets redacted."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

from pythonjsonlogger.json import JsonFormatter

_URI_CREDENTIALS = re.compile(r"(mongodb(?:\+srv)?://)([^@/\s]+)@")
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class Redactor:
    """Removes secrets (the token, database credentials) from text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = [s for s in secrets if s and len(s) >= 4]

    def redact(self, text: str) -> str:
        text = _URI_CREDENTIALS.sub(r"\1***@", text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


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
