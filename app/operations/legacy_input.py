"""Reading the old bots' JSON files (the seeds' formats) into checked records, each with its file:line.

Every file is parsed and every value checked before anything is written; a problem raises
`LegacyInputError("file.json:12: what is wrong")`. The kind of a file is told by its name:

- `invite_cache_backup.json` (seed 000): `{guild_id: {code: {uses, inviter_id, inviter_name, code}}}`
- `invites.json` (seed 002): `{guild_id: {user_id: {regular, fake, left, bonus}}}`
- `join-history.json` (seed 002): `{guild_id: [{userId, username, inviterId, inviterName, inviteCode,
  joinedAt, leftAt}]}` (joinedAt/leftAt: ISO 8601 with a zone, or epoch milliseconds)
- anything else (seed 003): per-user documents `{_id: user_id, data: {message_count,
  voice_cam_on_minutes, voice_cam_off_minutes}}`, as a JSON array or one document per line
  (mongoexport), numbers plain or as extended JSON (`{"$numberInt": "5"}`).

Ids may be JSON numbers or strings of digits (the JavaScript bots keep them as strings).
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from json import decoder as json_decoder
from json import scanner as json_scanner
from pathlib import Path
from typing import Any, TypeVar

from app.wiring.clock import from_ms

CACHE_FILE = "invite_cache_backup.json"
COUNTS_FILE = "invites.json"
HISTORY_FILE = "join-history.json"
PROBE_ID = "mongodb_test"  # the seed-003 bot's startup test document, not a member
MAX_ID = 2**63
T = TypeVar("T", int, float)
# Every imported number (a count, uses, minutes) and every number derived from one (seconds, an
# invite total) is at most 2^53 - 1: what the old JavaScript bots could hold exactly, and far enough
# below MongoDB's int64 (2^63 - 1) that the bot's own `$inc` on top of it can never overflow (an
# overflowing `$inc` is refused by MongoDB for good: every later count of that document would fail).
MAX_COUNT = 2**53 - 1


class LegacyInputError(ValueError):
    """A legacy file cannot be imported; the message starts with `file:line:`."""


class Node(dict):  # type: ignore[type-arg]
    """A JSON object that knows the line it starts on."""

    line: int = 0


@dataclass(frozen=True)
class Where:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"

    def error(self, message: str) -> LegacyInputError:
        return LegacyInputError(f"{self}: {message}")


class _LineDecoder(json.JSONDecoder):
    """json with a line number on every object, and duplicate keys refused."""

    def __init__(self, name: str, text: str) -> None:
        super().__init__()
        self.name = name
        self.starts = [0, *(i + 1 for i, c in enumerate(text) if c == "\n")]
        self.parse_object = self._object
        self.scan_once = json_scanner.py_make_scanner(self)

    def line_at(self, index: int) -> int:
        return bisect.bisect_right(self.starts, index)

    def _object(self, s_and_end: tuple[str, int], strict: bool, scan_once: Any, object_hook: Any,
                object_pairs_hook: Any, memo: Any = None) -> tuple[Node, int]:
        pairs, end = json_decoder.JSONObject(s_and_end, strict, scan_once, None, list, memo)
        node = Node()
        node.line = self.line_at(s_and_end[1] - 1)
        for key, value in pairs:
            if key in node:
                raise LegacyInputError(f"{self.name}:{node.line}: key {key!r} appears twice")
            node[key] = value
        return node, end


def _decode(name: str, text: str) -> Iterator[Any]:
    """The JSON values in `text`: one document, or several one after another (mongoexport lines)."""
    dec = _LineDecoder(name, text)
    index = 0
    try:
        while True:
            while index < len(text) and text[index].isspace():
                index += 1
            if index >= len(text):
                return
            value, index = dec.raw_decode(text, index)
            yield value
    except json.JSONDecodeError as exc:
        raise LegacyInputError(f"{name}:{exc.lineno}: invalid JSON: {exc.msg}") from None


def read_json(path: Path) -> tuple[str, list[Any]]:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LegacyInputError(f"{name}:0: cannot read: {exc}") from None
    return name, list(_decode(name, text))


# ---- values ------------------------------------------------------------------------------------------
def _unwrap(value: Any) -> Any:
    """Extended JSON numbers ({"$numberInt": "5"}) as plain values."""
    if isinstance(value, dict) and len(value) == 1:
        (key, inner), = value.items()
        if key in ("$numberInt", "$numberLong", "$numberDouble") and isinstance(inner, str):
            try:
                return float(inner) if key == "$numberDouble" else int(inner)
            except ValueError:
                return value
    return value


def snowflake(value: Any, where: Where, what: str) -> int:
    value = _unwrap(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < MAX_ID:
        raise where.error(f"{what} must be a Discord id (a positive 64-bit integer), got {value!r}")
    return value


def count(value: Any, where: Where, what: str) -> int:
    value = _unwrap(value)
    if isinstance(value, float) and value.is_integer():
        value = int(bounded(value, where, what))
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise where.error(f"{what} must be a whole number >= 0, got {value!r}")
    return bounded(value, where, what)


def bounded(value: T, where: Where, what: str) -> T:
    """`value` when it is within ±`MAX_COUNT`, else the file's line says what is too large."""
    if not -MAX_COUNT <= value <= MAX_COUNT:
        raise where.error(f"{what} must be at most {MAX_COUNT:,} (2^53 - 1), got {value!r}")
    return value


def text(value: Any, where: Where, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    raise where.error(f"{what} must be a string, got {value!r}")


def moment(value: Any, where: Where, what: str) -> datetime:
    value = _unwrap(value)
    if isinstance(value, dict) and set(value) == {"$date"}:
        value = _unwrap(value["$date"])
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return from_ms(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    raise where.error(f"{what} must be an ISO 8601 time with a zone or epoch milliseconds, got {value!r}")


def node(value: Any, parent: Where, what: str) -> tuple[Node, Where]:
    if not isinstance(value, Node):
        raise parent.error(f"{what} must be an object, got {value!r}")
    return value, Where(parent.file, value.line)


def single_object(name: str, values: list[Any]) -> Node:
    if len(values) != 1 or not isinstance(values[0], Node):
        raise LegacyInputError(f"{name}:1: expected one JSON object")
    return values[0]
