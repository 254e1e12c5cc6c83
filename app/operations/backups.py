"""Backup and restore of the bot's data as mongoexport-compatible Extended JSON.

A backup is a directory `DATA_DIR/backups/<backup_id>/` holding:

- `<collection>.json`: one document per line in canonical Extended JSON v2, the format of
  `mongoexport --jsonFormat=canonical` (so `mongoimport` reads it too). Canonical, not relaxed:
  relaxed mode writes a 64-bit integer that fits in 32 bits as a plain number, which comes back
  as a 32-bit integer; canonical keeps every BSON type ($numberLong, $date, $numberDouble...).
- `manifest.json`: format version, backup id, creation time, database, guild filter, and per
  collection the file, its document count and its sha256.

A guild backup holds every document with `guild_id == ID` from every collection; an all-data
backup holds everything; a member backup (written by `/data erase` before it deletes) holds the
documents with `guild_id == ID` and `member_id == M` of the named collections, and a restore of it
with `drop_first` clears only that member's documents.

Operational collections are never backed up or restored: names starting
with `_` (the startup probe), `system.*`, `lifecycle` (tells a crash from a redeploy; an old copy
would lie) and `outbox` (unacknowledged writes belong to the running bot, never to a backup).

Restore verifies every file against the manifest (checksum, count, each line parses, the guild
filter) before writing anything, then upserts each document by `_id` as it was
(`ReplaceOne(upsert=True)`: the one place a whole-document replace is right), so running it twice
gives the same result. The scripts `scripts/backup.py` / `scripts/restore.py` and the
`/backup-data` command are thin layers over `BackupService`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import sys
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from bson import json_util
from pymongo import ReplaceOne

from app.storage.retry import RetryPolicy, with_retry

log = logging.getLogger(__name__)

FORMAT = "activity-invite-tracker-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
BATCH = 500
BACKUP_ID_PATTERN = re.compile(r"\A\d{8}T\d{6}Z-[0-9a-f]{6}\Z")
COLLECTION_PATTERN = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,119}\Z")
SKIPPED_COLLECTIONS = frozenset({"lifecycle", "outbox"})
SKIPPED_PREFIXES = ("_", "system.")
JSON_OPTIONS = json_util.JSONOptions(
    json_mode=json_util.JSONMode.CANONICAL, tz_aware=True, tzinfo=UTC
)


class BackupError(Exception):
    """A backup cannot be written or read; the message is one line naming the file."""


class Progress(Protocol):
    def begin(self, what: str, total: int) -> None: ...
    def advance(self, count: int) -> None: ...
    def end(self) -> None: ...


class NoProgress:
    def begin(self, what: str, total: int) -> None:
        return None

    def advance(self, count: int) -> None:
        return None

    def end(self) -> None:
        return None


class TqdmProgress:
    """A tqdm bar on stderr; silent when stderr is not a terminal or `quiet` is set."""

    def __init__(self, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.disabled = quiet or not self.stream.isatty()
        self._bar: Any = None

    def begin(self, what: str, total: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, desc=what, unit="doc", file=self.stream, disable=self.disabled)

    def advance(self, count: int) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def end(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


@dataclass(frozen=True)
class CollectionEntry:
    name: str
    count: int
    sha256: str

    @property
    def file(self) -> str:
        return f"{self.name}.json"


@dataclass(frozen=True)
class Manifest:
    backup_id: str
    created_at: str
    database: str
    guild_id: int | None
    collections: tuple[CollectionEntry, ...]
    member_id: int | None = None

    @property
    def documents(self) -> int:
        return sum(entry.count for entry in self.collections)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "backup_id": self.backup_id,
            "created_at": self.created_at,
            "database": self.database,
            "guild_id": self.guild_id,
            "member_id": self.member_id,
            "skipped_collections": sorted(SKIPPED_COLLECTIONS) + [f"{p}*" for p in SKIPPED_PREFIXES],
            "collections": {
                e.name: {"file": e.file, "count": e.count, "sha256": e.sha256} for e in self.collections
            },
        }


@dataclass(frozen=True)
class BackupResult:
    backup_id: str
    path: Path
    manifest: Manifest

    @property
    def files(self) -> int:
        return len(self.manifest.collections)

    @property
    def documents(self) -> int:
        return self.manifest.documents


@dataclass
class RestoreResult:
    backup_id: str
    documents: int = 0
    inserted: int = 0
    replaced: int = 0
    collections: dict[str, int] = field(default_factory=dict)


def new_backup_id(now: datetime) -> str:
    """UTC timestamp plus a short random suffix: `20260310T120000Z-a1b2c3`."""
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def validate_backup_id(value: str) -> str:
    if not isinstance(value, str) or not BACKUP_ID_PATTERN.match(value):
        raise BackupError(f"{value!r} is not a backup id (like 20260310T120000Z-a1b2c3)")
    return value


def resolve_backup(reference: str, backups_root: Path) -> Path:
    """A path (contains a slash) as given; a bare name must be a backup id under `backups_root`."""
    if "/" in reference or os.sep in reference:
        return Path(reference)
    return backups_root / validate_backup_id(reference)


def is_backed_up(name: str) -> bool:
    return name not in SKIPPED_COLLECTIONS and not name.startswith(SKIPPED_PREFIXES)


def encode_line(doc: dict[str, Any]) -> bytes:
    return json_util.dumps(doc, json_options=JSON_OPTIONS).encode("utf-8") + b"\n"


def decode_line(line: bytes) -> dict[str, Any]:
    return json_util.loads(line.decode("utf-8"), json_options=JSON_OPTIONS)


class _FileWriter:
    """One collection file: writes lines and hashes exactly the bytes written."""

    def __init__(self, path: Path) -> None:
        self.handle = path.open("wb")
        self.hash = hashlib.sha256()
        self.count = 0

    def write(self, docs: list[dict[str, Any]]) -> None:
        data = b"".join(encode_line(doc) for doc in docs)
        self.handle.write(data)
        self.hash.update(data)
        self.count += len(docs)

    def close(self) -> None:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()


def _write_manifest(directory: Path, manifest: Manifest) -> None:
    path = directory / MANIFEST
    path.write_text(json.dumps(manifest.to_json(), indent=2) + "\n", encoding="utf-8")


class BackupService:
    """Writes and restores backups of one database; used by the scripts and `/backup-data`."""

    def __init__(self, db: Any, backups_root: Path, policy: RetryPolicy | None = None, *,
                 quota_bytes: int | None = None) -> None:
        self.db = db
        self.backups_root = backups_root
        self.policy = policy or RetryPolicy()
        self.quota_bytes = quota_bytes  # no new backup under backups_root once they use this much

    async def check_quota(self) -> None:
        """Raise BackupError when the backups already use `quota_bytes` or more."""
        if self.quota_bytes is None:
            return
        used = await asyncio.to_thread(usage_bytes, self.backups_root)
        if used >= self.quota_bytes:
            raise BackupError(f"backups use {used / 2**20:.0f} MB, the quota is "
                              f"{self.quota_bytes / 2**20:.0f} MB: delete old backups first")

    async def prune(self, guild_id: int, *, members: bool, keep: int) -> list[str]:
        """Keep the newest `keep` backups of the guild (of members, i.e. erase backups, or of the
        whole guild); delete the older ones. Returns the deleted ids."""
        return await asyncio.to_thread(prune_backups, self.backups_root, guild_id, members, keep)

    async def collection_names(self) -> list[str]:
        names = await with_retry("list collections", self.db.list_collection_names, self.policy)
        return sorted(name for name in names if is_backed_up(name))

    # ---- backup ---------------------------------------------------------------------------
    async def create(
        self,
        *,
        now: datetime,
        guild_id: int | None = None,
        out_root: Path | None = None,
        progress: Progress | None = None,
        member_id: int | None = None,
        only: Collection[str] | None = None,
    ) -> BackupResult:
        """Write a backup (of one guild, or everything) and return where it is and what it holds.

        With `member_id` (needs `guild_id`): only that member's documents; with `only`: only
        those collections."""
        if member_id is not None and guild_id is None:
            raise BackupError("a member backup needs the member's guild")
        progress = progress or NoProgress()
        if out_root is None:
            await self.check_quota()
        backup_id = new_backup_id(now)
        root = out_root or self.backups_root
        final = root / backup_id
        partial = root / f".{backup_id}.partial"
        await asyncio.to_thread(partial.mkdir, mode=0o700, parents=True)
        query = _scope(guild_id, member_id)
        try:
            names = [n for n in await self.collection_names() if only is None or n in only]
            total = 0
            for name in names:
                total += await with_retry(
                    f"count {name}", lambda n=name: self.db[n].count_documents(query), self.policy
                )
            progress.begin(f"backup {backup_id}", total)
            entries = [await self._dump(name, query, partial, progress) for name in names]
            manifest = Manifest(backup_id, now.astimezone(UTC).isoformat(), self.db.name, guild_id,
                                tuple(entries), member_id)
            await asyncio.to_thread(_write_manifest, partial, manifest)
            await asyncio.to_thread(partial.rename, final)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, partial, True)
            raise
        finally:
            progress.end()
        log.info("backup %s: %d collections, %d documents in %s",
                 backup_id, len(entries), manifest.documents, final)
        return BackupResult(backup_id, final, manifest)

    async def _dump(self, name: str, query: dict[str, Any], directory: Path, progress: Progress
                    ) -> CollectionEntry:
        writer = await asyncio.to_thread(_FileWriter, directory / f"{name}.json")
        try:
            cursor = self.db[name].find(query, batch_size=BATCH)
            while batch := await cursor.to_list(BATCH):
                await asyncio.to_thread(writer.write, batch)
                progress.advance(len(batch))
        finally:
            await asyncio.to_thread(writer.close)
        return CollectionEntry(name, writer.count, writer.hash.hexdigest())

    # ---- restore --------------------------------------------------------------------------
    async def restore(
        self, directory: Path, *, drop_first: bool = False, progress: Progress | None = None
    ) -> RestoreResult:
        """Verify the whole backup, then upsert every document by `_id` (idempotent).

        `drop_first` first removes what the backup covers: for a guild backup that guild's
        documents in each collection of the backup, for an all-data backup every document of
        those collections (their indexes stay).
        """
        progress = progress or NoProgress()
        manifest = await asyncio.to_thread(verify_backup, directory)
        result = RestoreResult(manifest.backup_id)
        progress.begin(f"restore {manifest.backup_id}", manifest.documents)
        try:
            for entry in manifest.collections:
                if drop_first:
                    await self._clear(entry.name, manifest.guild_id, manifest.member_id)
                await self._load(directory, entry, result, progress)
        finally:
            progress.end()
        log.info("restored backup %s: %d documents (%d inserted, %d replaced)",
                 manifest.backup_id, result.documents, result.inserted, result.replaced)
        return result

    async def _clear(self, name: str, guild_id: int | None, member_id: int | None = None) -> None:
        # delete_many, not drop: the collection keeps the indexes a running bot relies on.
        query = _scope(guild_id, member_id)
        await with_retry(
            f"clear {name} before restore", lambda: self.db[name].delete_many(query), self.policy
        )

    async def _load(self, directory: Path, entry: CollectionEntry, result: RestoreResult,
                    progress: Progress) -> None:
        collection = self.db[entry.name]
        batches = iter_batches(directory / entry.file)
        while docs := await asyncio.to_thread(next, batches, None):
            requests = [ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in docs]
            written = await with_retry(
                f"restore {entry.name}",
                lambda r=requests: collection.bulk_write(r, ordered=False),
                self.policy,
            )
            result.inserted += written.upserted_count
            result.replaced += written.matched_count
            result.documents += len(docs)
            result.collections[entry.name] = result.collections.get(entry.name, 0) + len(docs)
            progress.advance(len(docs))


def _scope(guild_id: int | None, member_id: int | None) -> dict[str, Any]:
    """The filter of what a backup covers: everything, one guild, or one member of one guild."""
    query: dict[str, Any] = {} if guild_id is None else {"guild_id": guild_id}
    if member_id is not None:
        query["member_id"] = member_id
    return query


def iter_batches(path: Path, size: int = BATCH) -> Iterator[list[dict[str, Any]]]:
    with path.open("rb") as handle:
        batch: list[dict[str, Any]] = []
        for line in handle:
            batch.append(decode_line(line))
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST
    if not directory.is_dir():
        raise BackupError(f"{directory}: no such backup directory")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != FORMAT or raw.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"not a version {FORMAT_VERSION} {FORMAT} manifest")
        guild_id = raw["guild_id"]
        if guild_id is not None and (not isinstance(guild_id, int) or isinstance(guild_id, bool)):
            raise ValueError("guild_id is not an integer")
        entries = []
        for name, item in raw["collections"].items():
            if not COLLECTION_PATTERN.match(name) or not is_backed_up(name):
                raise ValueError(f"collection name {name!r} is not allowed")
            if item["file"] != f"{name}.json":
                raise ValueError(f"file of {name} must be {name}.json")
            count, sha256 = item["count"], item["sha256"]
            if not isinstance(count, int) or count < 0 or not re.fullmatch(r"[0-9a-f]{64}", str(sha256)):
                raise ValueError(f"count or sha256 of {name} is malformed")
            entries.append(CollectionEntry(name, count, sha256))
        member_id = raw.get("member_id")
        if member_id is not None and (not isinstance(member_id, int) or isinstance(member_id, bool)
                                      or guild_id is None):
            raise ValueError("member_id is not an integer of a guild backup")
        return Manifest(validate_backup_id(raw["backup_id"]), str(raw["created_at"]), str(raw["database"]),
                        guild_id, tuple(entries), member_id)
    except FileNotFoundError:
        raise BackupError(f"{path}: missing; not a backup directory") from None
    except BackupError as exc:
        raise BackupError(f"{path}: {exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise BackupError(f"{path}: damaged manifest: {detail}") from None


def verify_backup(directory: Path) -> Manifest:
    """Check every file against the manifest; raise BackupError naming the first bad file."""
    manifest = read_manifest(directory)
    for entry in manifest.collections:
        _verify_file(directory / entry.file, entry, manifest.guild_id, manifest.member_id)
    return manifest


def _verify_file(path: Path, entry: CollectionEntry, guild_id: int | None, member_id: int | None = None
                 ) -> None:
    digest = hashlib.sha256()
    lines = 0
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
                lines += chunk.count(b"\n")
    except FileNotFoundError:
        raise BackupError(f"{path}: missing (listed in the manifest)") from None
    if digest.hexdigest() != entry.sha256 or lines != entry.count:
        raise BackupError(
            f"{path}: damaged or truncated: {lines} documents and sha256 {digest.hexdigest()[:12]}..., "
            f"the manifest says {entry.count} and {entry.sha256[:12]}...; nothing was restored"
        )
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            try:
                doc = decode_line(line)
            except (ValueError, TypeError) as exc:
                raise BackupError(f"{path}: line {number} is not Extended JSON: {exc}") from None
            if not isinstance(doc, dict) or "_id" not in doc:
                raise BackupError(f"{path}: line {number} is not a document with an _id")
            if guild_id is not None and doc.get("guild_id") != guild_id:
                raise BackupError(f"{path}: line {number} belongs to another guild than {guild_id}")
            if member_id is not None and doc.get("member_id") != member_id:
                raise BackupError(f"{path}: line {number} belongs to another member than {member_id}")


def usage_bytes(root: Path) -> int:
    """Bytes of every file under `root` (0 when it does not exist)."""
    if not root.is_dir():
        return 0
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


def prune_backups(root: Path, guild_id: int, members: bool, keep: int) -> list[str]:
    """Delete all but the newest `keep` backups of `guild_id` under `root`: member backups (erase)
    when `members`, else guild backups. Backups of other guilds, whole-database backups and
    folders without a readable manifest are never touched."""
    if not root.is_dir():
        return []
    mine: list[tuple[str, str, Path]] = []
    for directory in root.iterdir():
        if not BACKUP_ID_PATTERN.match(directory.name):
            continue
        try:
            manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if manifest.get("guild_id") == guild_id and (manifest.get("member_id") is not None) == members:
            mine.append((str(manifest.get("created_at", "")), directory.name, directory))
    mine.sort(reverse=True)
    deleted = []
    for _, backup_id, directory in mine[keep:]:
        shutil.rmtree(directory, ignore_errors=True)
        deleted.append(backup_id)
    if deleted:
        log.info("retention: deleted %d %s backups of guild %s (%s), kept the newest %d", len(deleted),
                 "member" if members else "guild", guild_id, ", ".join(deleted), keep)
    return deleted
