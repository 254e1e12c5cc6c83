"""Messages and attachments the emulator stores: channel history, bot-sent and interaction messages."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from . import payloads
from .constants import MessageFlag, MessageType
from .snowflake import SnowflakeGenerator, iso, utcnow
from .state import Channel, Member, User

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Fields a message create/edit body may set.
_EDITABLE = ("content", "embeds", "components", "flags", "poll")


@dataclass
class UploadedFile:
    field: str
    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class StoredAttachment:
    id: int
    channel_id: int
    filename: str
    content_type: str
    data: bytes


class MessageStore:
    """Every message by id; per-channel history of non-ephemeral ones; attachment bytes."""

    def __init__(self, ids: SnowflakeGenerator, base_url: Any) -> None:
        self._ids = ids
        self._base_url = base_url  # callable -> "http://127.0.0.1:PORT"
        self.by_id: dict[int, dict[str, Any]] = {}
        self.history: dict[int, list[dict[str, Any]]] = {}
        self.attachments: dict[int, StoredAttachment] = {}

    def create(
        self,
        *,
        channel: Channel,
        author: User,
        author_member: Member | None,
        body: dict[str, Any],
        files: list[UploadedFile],
        message_type: int = MessageType.DEFAULT,
        webhook_id: int | None = None,
        application_id: int | None = None,
        interaction_metadata: dict[str, Any] | None = None,
        extra_flags: int = 0,
        mentions: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        if body.get("message_reference") and message_type == MessageType.DEFAULT:
            message_type = MessageType.REPLY
        message = payloads.message(
            message_id=self._ids.next(),
            channel=channel,
            author=author,
            author_member=author_member,
            content=str(body.get("content") or ""),
            embeds=body.get("embeds") or [],
            components=body.get("components") or [],
            attachments=self._attachments(channel, body.get("attachments"), files, []),
            flags=int(body.get("flags") or 0) | extra_flags,
            message_type=message_type,
            webhook_id=webhook_id,
            application_id=application_id,
            interaction_metadata=interaction_metadata,
            mentions=mentions,
            tts=bool(body.get("tts", False)),
        )
        if body.get("message_reference"):
            message["message_reference"] = body["message_reference"]
        if body.get("poll"):
            message["poll"] = body["poll"]
        self.add(message)
        return message

    def add(self, message: dict[str, Any]) -> None:
        self.by_id[int(message["id"])] = message
        if not int(message.get("flags", 0)) & MessageFlag.EPHEMERAL:
            self.history.setdefault(int(message["channel_id"]), []).append(message)

    def edit(
        self, message: dict[str, Any], body: dict[str, Any], files: list[UploadedFile]
    ) -> dict[str, Any]:
        """Apply a PATCH body in place. ``attachments`` in the body lists the ones to keep
        (by id) and the new uploads; without it new uploads are added to the existing ones."""
        for key in _EDITABLE:
            if key in body and body[key] is not None:
                if key == "embeds":
                    message["embeds"] = [{"type": "rich", **e} for e in body["embeds"]]
                elif key == "flags":
                    keep = int(message.get("flags", 0)) & MessageFlag.EPHEMERAL
                    message["flags"] = int(body["flags"]) | keep
                else:
                    message[key] = body[key]
        channel_id = int(message["channel_id"])
        if "attachments" in body and body["attachments"] is not None:
            message["attachments"] = self._attachments_for_channel(
                channel_id, body["attachments"], files, message.get("attachments", [])
            )
        elif files:
            message["attachments"] = message.get("attachments", []) + self._attachments_for_channel(
                channel_id, None, files, []
            )
        message["flags"] = int(message.get("flags", 0)) & ~MessageFlag.LOADING
        message["edited_timestamp"] = iso(utcnow())
        return message

    def delete(self, message: dict[str, Any]) -> None:
        message_id = int(message["id"])
        self.by_id.pop(message_id, None)
        history = self.history.get(int(message["channel_id"]), [])
        self.history[int(message["channel_id"])] = [m for m in history if int(m["id"]) != message_id]

    def channel_history(
        self, channel_id: int, *, limit: int = 50, before: int | None = None, after: int | None = None,
        around: int | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first, like ``GET /channels/{id}/messages``: the `limit` newest (before `before`),
        the `limit` oldest after `after`, or `limit` around `around` (half each side, the message
        itself included when it exists)."""
        messages = self.history.get(channel_id, [])
        if around is not None:
            older = [m for m in messages if int(m["id"]) < around][-(limit // 2):] if limit // 2 else []
            newer = [m for m in messages if int(m["id"]) >= around][: limit - len(older)]
            return list(reversed(older + newer))
        if before is not None:
            messages = [m for m in messages if int(m["id"]) < before]
        if after is not None:
            messages = [m for m in messages if int(m["id"]) > after]
            return list(reversed(messages[:limit]))
        return list(reversed(messages[-limit:])) if limit else []

    # ---- attachments -----------------------------------------------------------------------
    def _attachments(
        self,
        channel: Channel,
        spec: list[dict[str, Any]] | None,
        files: list[UploadedFile],
        current: list[Any],
    ) -> list[dict[str, Any]]:
        return self._attachments_for_channel(channel.id, spec, files, current)

    def _attachments_for_channel(
        self,
        channel_id: int,
        spec: list[dict[str, Any]] | None,
        files: list[UploadedFile],
        current: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        by_field = {f.field: f for f in files}
        existing = {str(a["id"]): a for a in current}
        result: list[dict[str, Any]] = []
        if spec is None:
            spec = [{"id": index, "filename": f.filename} for index, f in enumerate(files)]
        for entry in spec:
            key = str(entry.get("id"))
            if key in existing:
                result.append(existing[key])
                continue
            upload = by_field.get(f"files[{key}]")
            if upload is None:
                continue
            result.append(self._store(channel_id, upload, entry))
        return result

    def _store(self, channel_id: int, upload: UploadedFile, entry: dict[str, Any]) -> dict[str, Any]:
        attachment_id = self._ids.next()
        filename = str(entry.get("filename") or upload.filename)
        self.attachments[attachment_id] = StoredAttachment(
            attachment_id, channel_id, filename, upload.content_type, upload.data
        )
        url = f"{self._base_url()}/attachments/{channel_id}/{attachment_id}/{filename}"
        payload: dict[str, Any] = {
            "id": str(attachment_id),
            "filename": filename,
            "size": upload.size,
            "url": url,
            "proxy_url": url,
            "content_type": _content_type(filename, upload),
        }
        if entry.get("description"):
            payload["description"] = entry["description"]
        size = png_size(upload.data)
        if size is not None:
            payload["width"], payload["height"] = size
        return payload


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, or None for anything else."""
    if len(data) >= 24 and data.startswith(_PNG_SIGNATURE) and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    return None


def _content_type(filename: str, upload: UploadedFile) -> str:
    if upload.data.startswith(_PNG_SIGNATURE):
        return "image/png"
    if upload.content_type and upload.content_type != "application/octet-stream":
        return upload.content_type
    lowered = filename.lower()
    for suffix, kind in ((".json", "application/json"), (".csv", "text/csv"), (".txt", "text/plain")):
        if lowered.endswith(suffix):
            return f"{kind}; charset=utf-8" if kind.startswith("text/") else kind
    return "application/octet-stream"
