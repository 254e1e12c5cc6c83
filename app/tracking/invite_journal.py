"""How the invite tracker's inputs are written to the invite journal (`app.storage.journal`) and
read back: join events, leave / invite / role events, and the invite reads made for waiting joins.

Times: arrival and read times are the tracker's monotonic seconds, which mean nothing to another
process; they are kept as wall-clock seconds and mapped back onto the new process's monotonic
clock, so restored joins and reads keep their order and spacing (what attribution depends on).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from repositories.invites import StoredInvite

JOIN = "join"
READ = "read"
JOB_KINDS = ("leave", "invite_create", "invite_delete", "roles")  # refresh: a command, not kept


@dataclasses.dataclass(frozen=True)
class JoinEntry:
    member_id: int
    name: str
    joined_at: datetime
    created_at: datetime
    live: bool
    wall: float


@dataclasses.dataclass(frozen=True)
class ReadEntry:
    sent_wall: float
    answered_wall: float
    at: datetime
    invites: list[StoredInvite]
    vanity_code: str | None
    vanity_uses: int | None
    keys: frozenset[str]


@dataclasses.dataclass(frozen=True)
class JobEntry:
    kind: str
    data: Any
    wall: float
    when: datetime | None


def join_body(entry: JoinEntry) -> dict[str, Any]:
    return {"m": entry.member_id, "n": entry.name, "j": entry.joined_at, "c": entry.created_at,
            "l": entry.live, "w": entry.wall}


def join_entry(body: dict[str, Any]) -> JoinEntry:
    return JoinEntry(int(body["m"]), str(body["n"]), body["j"], body["c"], bool(body["l"]), float(body["w"]))


def read_body(entry: ReadEntry) -> dict[str, Any]:
    return {"s": entry.sent_wall, "a": entry.answered_wall, "t": entry.at,
            "i": [dataclasses.asdict(inv) for inv in entry.invites],
            "vc": entry.vanity_code, "vu": entry.vanity_uses, "k": sorted(entry.keys)}


def read_entry(body: dict[str, Any]) -> ReadEntry:
    return ReadEntry(float(body["s"]), float(body["a"]), body["t"], [_invite(d) for d in body["i"]],
                     body.get("vc"), body.get("vu"), frozenset(body.get("k") or ()))


def job_body(entry: JobEntry) -> dict[str, Any]:
    return {"d": _encode_data(entry.kind, entry.data), "w": entry.wall, "t": entry.when}


def job_entry(kind: str, body: dict[str, Any]) -> JobEntry:
    return JobEntry(kind, _decode_data(kind, body["d"]), float(body["w"]), body.get("t"))


def _encode_data(kind: str, data: Any) -> Any:
    if kind == "invite_create":
        return dataclasses.asdict(data)
    if kind == "roles":
        member_id, added = data
        return {"m": member_id, "r": sorted(added)}
    return data  # leave: a member id; invite_delete: a code


def _decode_data(kind: str, data: Any) -> Any:
    if kind == "invite_create":
        return _invite(data)
    if kind == "roles":
        return int(data["m"]), {int(r) for r in data["r"]}
    if kind == "leave":
        return int(data)
    return data


def _invite(doc: dict[str, Any]) -> StoredInvite:
    return StoredInvite(**{f.name: doc.get(f.name) for f in dataclasses.fields(StoredInvite)})
