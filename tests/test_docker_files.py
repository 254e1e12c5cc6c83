"""The Dockerfile and docker-compose.yml, checked without a Docker engine.

hadolint lints the Dockerfile, check-jsonschema validates the compose file against the Compose
specification, and the assertions here check what the deploy relies on: replica set with auth and
a keyFile, least-privilege app user, credentials from .env, named volumes, healthchecks, restart
policy, start order, nothing published, time for the graceful shutdown.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from app.wiring.bot import SHUTDOWN_HOOK_TIMEOUT
from app.wiring.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = BIN / name
    if found.exists():
        return str(found)
    path = shutil.which(name)
    assert path, f"{name} is not installed (pip install -r requirements-dev.txt)"
    return path


# ---- Dockerfile ----------------------------------------------------------------------------------


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    result = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def index_of(items: list[tuple[str, str]], keyword: str, contains: str = "") -> int:
    for index, (kw, rest) in enumerate(items):
        if kw == keyword and contains in rest:
            return index
    raise AssertionError(f"no {keyword} {contains!r} in the Dockerfile")


def test_hadolint_passes() -> None:
    done = subprocess.run([tool("hadolint"), "Dockerfile"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_slim_base_cached_dependencies_non_root() -> None:
    items = instructions()
    assert items[0][0] == "FROM" and re.fullmatch(r"python:3\.11-slim(-\w+)?", items[0][1])
    copy_requirements = index_of(items, "COPY", "requirements.txt")
    install = index_of(items, "RUN", "pip install --no-cache-dir -r requirements.txt")
    first_code = index_of(items, "COPY", "app/")
    assert copy_requirements < install < first_code, "dependencies get their own layer before the code"
    assert items[copy_requirements][1].split()[0] == "requirements.txt", "only requirements.txt in that layer"

    user = index_of(items, "USER")
    uid = items[user][1].split(":")[0]
    assert uid.isdigit() and int(uid) > 0, "runs as a non-root numeric user"
    assert f"--uid {uid}" in items[index_of(items, "RUN", "useradd")][1]
    assert all(kw != "RUN" for kw, _ in items[user:]), "nothing runs as root after USER"
    assert items[-1] == ("CMD", '["python", "main.py"]')


def test_dockerfile_stop_signal_healthcheck_and_data_volume() -> None:
    items = instructions()
    assert ("STOPSIGNAL", "SIGTERM") in items
    health = items[index_of(items, "HEALTHCHECK")][1]
    assert health.endswith('CMD ["python", "/app/scripts/docker/healthcheck.py"]')
    assert (ROOT / "scripts/docker/healthcheck.py").is_file()
    env = " ".join(rest for kw, rest in items if kw == "ENV")
    assert "HEALTH_PORT=8080" in env and "DATA_DIR=/data" in env
    assert ("VOLUME", '["/data"]') in items
    assert "chown tracker:tracker /data" in items[index_of(items, "RUN", "useradd")][1]


def test_no_secrets_in_the_image() -> None:
    items = instructions()
    for keyword, rest in items:
        if keyword in ("ENV", "ARG"):
            assert not re.search(r"TOKEN|PASSWORD|SECRET|MONGODB_URI", rest), f"{keyword} {rest}"
        if keyword in ("COPY", "ADD"):
            sources = rest.split()[:-1]
            assert ".env" not in sources and "." not in sources, "only named folders are copied"
            for source in sources:
                assert (ROOT / source).exists(), source
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored and "data/" in ignored and ".git" in ignored


# ---- docker-compose.yml --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def example_env() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if re.match(r"[A-Z][A-Z0-9_]*=", line):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def _closing_brace(text: str, start: int) -> int:
    """Index of the } that closes the ${ opened at start."""
    depth = 0
    for index in range(start, len(text)):
        if text.startswith("${", index):
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    raise ValueError(f"unclosed ${{ in {text!r}")


def variables(text: str) -> list[tuple[str, str, str]]:
    """Every ${NAME}, ${NAME:-default} and ${NAME:?error} in text, nested ones included:
    (name, "-" or "?" or "", the default or error text)."""
    found = []
    index = text.find("${")
    while index >= 0:
        end = _closing_brace(text, index)
        match = re.fullmatch(r"([A-Za-z0-9_]+)(?::([-?])(.*))?", text[index + 2:end], re.S)
        assert match, text[index:end + 1]
        name, kind, arg = match.group(1), match.group(2) or "", match.group(3) or ""
        found += [(name, kind, arg), *variables(arg)]
        index = text.find("${", end)
    return found


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} on a string, nested ones included."""
    out, index = [], 0
    while (start := value.find("${", index)) >= 0:
        end = _closing_brace(value, start)
        match = re.fullmatch(r"([A-Za-z0-9_]+)(?::([-?])(.*))?", value[start + 2:end], re.S)
        assert match, value[start:end + 1]
        name, kind, arg = match.groups()
        current = env.get(name, "")
        if kind == "?" and not current:
            raise ValueError(f"{name}: {arg}")
        out += [value[index:start], current if current or kind != "-" else interpolate(arg, env)]
        index = end + 1
    return "".join(out) + value[index:]


def duration_seconds(text: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text))


def test_compose_file_matches_the_compose_specification() -> None:
    done = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "docker-compose.yml"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_mongo_is_a_one_member_replica_set_with_auth_and_a_keyfile(compose: dict[str, Any]) -> None:
    mongo = compose["services"]["mongo"]
    assert mongo["image"] == "mongo:8.0"
    command = mongo["command"]
    assert command[0] == "mongod"
    assert command[command.index("--replSet") + 1] == "rs0"
    keyfile = command[command.index("--keyFile") + 1]
    assert mongo["entrypoint"] == ["bash", "/scripts/mongo-entrypoint.sh"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in mongo["volumes"]}  # target: source
    assert mounts["/scripts/mongo-entrypoint.sh"] == "./scripts/docker/mongo-entrypoint.sh"
    script = (ROOT / "scripts/docker/mongo-entrypoint.sh").read_text()
    assert f'KEYFILE="${{MONGO_KEYFILE:-{keyfile}}}"' in script
    assert mounts[str(Path(keyfile).parent)] in compose["volumes"], "the keyFile lives in a named volume"
    assert mounts["/data/db"] in compose["volumes"], "the data lives in a named volume"
    health = (ROOT / mounts["/scripts/mongo-healthcheck.js"]).read_text()
    assert 'replSetInitiate: { _id: "rs0", members: [{ _id: 0, host: "mongo:27017" }] }' in health
    assert "isWritablePrimary" in health
    assert "/scripts/mongo-healthcheck.js" in mongo["healthcheck"]["test"]


def test_root_credentials_from_env_and_a_least_privilege_app_user(compose: dict[str, Any]) -> None:
    mongo = compose["services"]["mongo"]
    env = mongo["environment"]
    assert env["MONGO_INITDB_ROOT_USERNAME"].startswith("${MONGO_ROOT_USER:?")
    assert env["MONGO_INITDB_ROOT_PASSWORD"].startswith("${MONGO_ROOT_PASSWORD:?")
    assert env["MONGO_APP_USER"].startswith("${MONGO_APP_USER:?")
    assert env["MONGO_APP_PASSWORD"].startswith("${MONGO_APP_PASSWORD:?")
    init = [v.split(":")[0] for v in mongo["volumes"] if "/docker-entrypoint-initdb.d/" in v]
    assert init == ["./scripts/docker/mongo-init-app-user.js"]
    script = (ROOT / init[0]).read_text()
    roles = re.findall(r"role: \"(\w+)\"", script)
    assert roles == ["readWrite"], "the app user gets readWrite and nothing else"
    assert "roles: [{ role: \"readWrite\", db: dbName }]" in script
    assert "db.getSiblingDB(dbName).createUser(" in script, "created in (and scoped to) the bot's database"

    bot_env = compose["services"]["bot"]["environment"]
    assert bot_env["MONGO_ROOT_USER"] == "" and bot_env["MONGO_ROOT_PASSWORD"] == ""
    bundled = bot_env["MONGODB_URI"].removeprefix("${MONGODB_URI:-").removesuffix("}")
    uri = urlsplit(bundled)
    assert uri.username == "${MONGO_APP_USER}" and uri.password == "${MONGO_APP_PASSWORD}"
    assert uri.hostname == "mongo" and uri.port == 27017
    database = uri.path.lstrip("/")
    assert database == env["MONGODB_DB"] == bot_env.get("MONGODB_DB", env["MONGODB_DB"])
    assert parse_qs(uri.query) == {"replicaSet": ["rs0"], "authSource": [database]}


def test_the_bot_accepts_the_environment_compose_gives_it(compose: dict[str, Any]) -> None:
    env = {**example_env(), "DISCORD_TOKEN": "t0ken", "MONGO_ROOT_PASSWORD": "rootpw",
           "MONGO_APP_PASSWORD": "apppw"}
    container = {**env, **{k: interpolate(str(v), env) for k, v in
                           compose["services"]["bot"]["environment"].items()}}
    settings = Settings(_env_file=None, **{k.lower(): v for k, v in container.items()  # type: ignore[call-arg]
                                           if k.lower() in Settings.model_fields})
    assert settings.mongodb_uri is not None
    assert settings.mongodb_uri.get_secret_value() == (
        "mongodb://tracker:apppw@mongo:27017/tracker?replicaSet=rs0&authSource=tracker"
    )
    assert settings.health_port == 8080 and str(settings.data_dir) == "/data"
    assert container["MONGO_ROOT_PASSWORD"] == "", "the root password does not reach the bot"

    with pytest.raises(ValueError, match=r"set DISCORD_TOKEN in \.env"):
        interpolate(compose["services"]["bot"]["environment"]["DISCORD_TOKEN"], {})


# Set by Compose itself; the bundled default of MONGODB_URI differs from the bot's on purpose.
PREDEFINED = {"COMPOSE_PROJECT_NAME"}
OWN_DEFAULT = {"MONGODB_URI"}


def test_every_compose_variable_is_documented_in_env_example() -> None:
    used = set(variables((ROOT / "docker-compose.yml").read_text()))
    names = {name for name, _, _ in used} - PREDEFINED
    assert names <= set(example_env()), f"undocumented: {sorted(names - set(example_env()))}"
    defaults = {name: default for name, kind, default in used
                if kind == "-" and name not in PREDEFINED | OWN_DEFAULT}
    for name, default in defaults.items():
        if name.lower() in Settings.model_fields:
            assert str(Settings.model_fields[name.lower()].default) == default, f"{name} default differs"
        assert example_env()[name] == default, f"{name}: compose's default differs from .env.example"


def test_health_restart_order_ports_and_grace_period(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"mongo", "bot", "backup-retention"}
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
        assert "ports" not in service, f"{name} publishes nothing on the host"
    for name in ("mongo", "bot"):
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    bot = services["bot"]
    assert bot["depends_on"]["mongo"]["condition"] == "service_healthy"
    assert bot["healthcheck"]["test"] == ["CMD", "python", "/app/scripts/docker/healthcheck.py"]
    assert bot["environment"]["HEALTH_PORT"] == "8080"
    assert bot["env_file"] == ".env"
    assert bot["volumes"][0] == "bot-data:/data" and bot["environment"]["DATA_DIR"] == "/data"
    assert "bot-data" in compose["volumes"]
    grace = duration_seconds(bot["stop_grace_period"])
    assert grace >= 3 * SHUTDOWN_HOOK_TIMEOUT, "room for in-flight writes and the flush hooks"
    assert duration_seconds(services["mongo"]["stop_grace_period"]) >= 10


def test_keyfile_script_creates_a_400_key_once_and_hands_over(tmp_path: Path) -> None:
    keyfile = tmp_path / "keys" / "keyfile"
    env = {
        **os.environ,
        "MONGO_KEYFILE": str(keyfile),
        "MONGO_KEYFILE_OWNER": f"{os.getuid()}:{os.getgid()}",
        "MONGO_NEXT_ENTRYPOINT": "echo",
        **MONGO_ENV,
        "MONGO_CGROUP_MEMORY_FILES": str(tmp_path / "no-cgroup-file"),
    }
    script = str(ROOT / "scripts/docker/mongo-entrypoint.sh")
    first = subprocess.run(["bash", script, "mongod", "--replSet", "rs0"], env=env, capture_output=True,
                           text=True, timeout=30, check=True)
    assert first.stdout.splitlines()[-1] == "mongod --replSet rs0", "arguments are passed on"
    key = keyfile.read_text()
    assert re.fullmatch(r"[A-Za-z0-9+/=]{1008}", key), "6..1024 base64 characters, no newline"
    assert keyfile.stat().st_mode & 0o777 == 0o400
    subprocess.run(["bash", script, "mongod"], env=env, capture_output=True, timeout=30, check=True)
    assert keyfile.read_text() == key, "an existing key is kept"
    assert keyfile.stat().st_mode & 0o777 == 0o400


# ---- issue 18: compose for operators -------------------------------------------------------------

MONGO_ENV = {
    "MONGO_INITDB_ROOT_USERNAME": "root", "MONGO_INITDB_ROOT_PASSWORD": "rootpw",
    "MONGO_APP_USER": "tracker", "MONGO_APP_PASSWORD": "apppw", "MONGODB_DB": "tracker",
}


def docs_text(name: str) -> str:
    return (ROOT / "docs" / name).read_text()


def test_mongo_is_pinned_to_a_release_series_with_a_documented_upgrade(compose: dict[str, Any]) -> None:
    """Finding 9: `mongo:8` followed 8.0 to 8.2 (a shorter-lived release); back needs MongoDB support."""
    image = compose["services"]["mongo"]["image"]
    assert re.fullmatch(r"mongo:\d+\.\d+", image), f"{image}: a major.minor series, patches only"
    deploy = docs_text("deploy.md")
    assert "`mongo:8` means" not in deploy and "newer MongoDB 8.x patch releases" not in deploy
    upgrade = deploy[deploy.index("## Upgrade MongoDB"):]
    for step in ("setFeatureCompatibilityVersion", "mongodump", image):
        assert step in upgrade, f"the upgrade path names {step}"


def test_update_by_pull_then_up_never_pulls_the_bots_own_image(compose: dict[str, Any]) -> None:
    """Finding 10: `docker compose pull` failed on an image that exists in no registry."""
    services = compose["services"]
    own = services["bot"]["image"]
    assert services["bot"]["pull_policy"] == "build", "pull skips it, up builds it"
    for name, service in services.items():
        if service.get("image") == own and "build" not in service:
            assert service["pull_policy"] == "never", f"{name} uses the image the bot's build makes"
    assert "docker compose pull && docker compose up -d" in docs_text("deploy.md")


def test_every_container_has_rotated_logs_and_a_memory_limit(compose: dict[str, Any]) -> None:
    """Finding 11: json-file never rotates; no memory limits."""
    env = example_env()
    for name, service in compose["services"].items():
        logging = service["logging"]
        assert logging["driver"] == "json-file", name
        assert re.fullmatch(r"\d+[km]", logging["options"]["max-size"]), name
        assert int(logging["options"]["max-file"]) >= 2, name
        limit = interpolate(service["deploy"]["resources"]["limits"]["memory"], env)
        assert re.fullmatch(r"\d+[mg]", limit), f"{name}: {limit}"


def run_entrypoint(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ, **MONGO_ENV,
        "MONGO_KEYFILE": str(tmp_path / "keys" / "keyfile"),
        "MONGO_KEYFILE_OWNER": f"{os.getuid()}:{os.getgid()}",
        "MONGO_NEXT_ENTRYPOINT": "echo",
        "MONGO_CGROUP_MEMORY_FILES": str(tmp_path / "memory.max"),
        **extra,
    }
    return subprocess.run(["bash", str(ROOT / "scripts/docker/mongo-entrypoint.sh"), *args], env=env,
                          capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize(("limit", "cache"), [
    ("1073741824", "0.25"),     # 1 GiB: 50% of (1 GiB - 1 GiB) is below the 0.25 GB floor
    ("3221225472", "1.00"),     # 3 GiB: 50% of 2 GiB
    ("805306368", "0.25"),      # 768 MiB
    ("max", None),              # cgroup v2 without a limit: MongoDB's own sizing
    ("9223372036854771712", None),  # cgroup v1 without a limit
])
def test_the_wiredtiger_cache_follows_the_container_memory_limit(
        tmp_path: Path, limit: str, cache: str | None) -> None:
    """Finding 11: WiredTiger sizes its cache from the host's RAM unless told."""
    (tmp_path / "memory.max").write_text(limit + "\n")
    done = run_entrypoint(tmp_path, "mongod", "--replSet", "rs0")
    assert done.returncode == 0, done.stderr
    expected = "mongod --replSet rs0" + (f" --wiredTigerCacheSizeGB {cache}" if cache else "")
    assert done.stdout.splitlines()[-1] == expected
    assert run_entrypoint(tmp_path, "mongod", "--wiredTigerCacheSizeGB", "2").stdout.splitlines()[-1] == \
        "mongod --wiredTigerCacheSizeGB 2", "an explicit size is kept"


def healthcheck(scenario: dict[str, Any], script: Path | None = None) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "node is not installed (the mongosh scripts' tests need it)"
    done = subprocess.run(
        [node, str(ROOT / "tests/mongo_healthcheck_harness.js"),
         str(script or ROOT / "scripts/docker/mongo-healthcheck.js"), json.dumps(scenario)],
        capture_output=True, text=True, timeout=60, check=True,
    )
    return json.loads(done.stdout)


def scenario(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"env": dict(MONGO_ENV), "users": {"tracker.tracker": "apppw"},
                            "root": ["root", "rootpw"], "setName": "rs0", "primary": True}
    return {**base, **changes}


def test_mongo_stays_healthy_after_the_root_password_is_rotated() -> None:
    """Finding 12: the check logged in as root with the password MongoDB read on the first start."""
    rotated = healthcheck(scenario(root=["root", "rotated"]))
    assert rotated["exit"] == 0, rotated
    assert rotated["logins"] == ["tracker.tracker"], "the bot's own login, never root's"
    assert healthcheck(scenario(primary=False))["exit"] == 1
    assert "mongodb://127.0.0.1:27017/admin" in " ".join(
        yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["mongo"]["healthcheck"]["test"]
    ), "the check's own connection carries no credentials"


def test_the_first_start_still_initiates_the_replica_set_as_root() -> None:
    first = healthcheck(scenario(setName=None))
    assert first["exit"] == 1 and first["logins"] == ["admin.root"]
    assert first["initiated"] == {"_id": "rs0", "members": [{"_id": 0, "host": "mongo:27017"}]}


@pytest.mark.parametrize(("change", "message"), [
    ({"MONGO_APP_PASSWORD": ""}, "MONGO_APP_PASSWORD must be"),
    ({"MONGO_APP_PASSWORD": "p@ss/word"}, "MONGO_APP_PASSWORD must be"),
    ({"MONGO_APP_USER": "root"}, "MONGO_APP_USER must differ from MONGO_ROOT_USER"),
    ({"MONGO_APP_USER": ""}, "MONGO_APP_USER must be"),
    ({"MONGODB_DB": "a.b"}, "MONGODB_DB must be"),
    ({"MONGO_INITDB_ROOT_PASSWORD": ""}, "MONGO_ROOT_PASSWORD is empty"),
])
def test_bad_app_user_settings_stop_mongo_before_root_is_created(
        tmp_path: Path, change: dict[str, str], message: str) -> None:
    """Finding 13: the image creates root, then runs the init script; a throwing script left root in
    place and the init skipped for good. The entrypoint now refuses before handing over."""
    done = run_entrypoint(tmp_path, "mongod", **change)
    assert done.returncode == 64 and message in done.stderr, done.stderr
    assert done.stdout == "", "the image's entrypoint (which creates root) never ran"
    assert not (tmp_path / "keys").exists(), "nothing was written"


def test_a_missing_app_user_is_created_and_a_wrong_password_reported() -> None:
    """Finding 13: when the bot's user is missing anyway (its creation failed), the healthcheck
    creates it as root; a password that differs is reported, not changed."""
    missing = healthcheck(scenario(users={}))
    assert missing["exit"] == 1
    assert missing["created"] == [{"db": "tracker", "user": "tracker", "pwd": "apppw",
                                   "roles": [{"role": "readWrite", "db": "tracker"}]}]
    wrong = healthcheck(scenario(users={"tracker.tracker": "other"}))
    assert wrong["exit"] == 1 and wrong["created"] == []
    assert "MONGO_APP_PASSWORD is not its password" in wrong["printed"][-1]
    no_root = healthcheck(scenario(users={}, root=["root", "rotated"]))
    assert no_root["exit"] == 1 and no_root["created"] == []
    assert "the root login failed" in no_root["printed"][-1]


def bot_settings(compose: dict[str, Any], env: dict[str, str]) -> Settings:
    container = {**env, **{k: interpolate(str(v), env) for k, v in
                           compose["services"]["bot"]["environment"].items()}}
    return Settings(_env_file=None, **{k.lower(): v for k, v in container.items()  # type: ignore[call-arg]
                                       if k.lower() in Settings.model_fields})


def test_a_mongodb_uri_in_env_reaches_the_bot_and_the_bundled_mongodb_is_a_profile(
        compose: dict[str, Any]) -> None:
    """Finding 14: compose hard-coded MONGODB_URI, so .env's (Atlas, a managed cluster) was ignored."""
    env = {**example_env(), "DISCORD_TOKEN": "t", "MONGO_ROOT_PASSWORD": "r", "MONGO_APP_PASSWORD": "a"}
    atlas = "mongodb+srv://bot:pw@cluster0.example.mongodb.net/tracker"
    settings = bot_settings(compose, {**env, "MONGODB_URI": atlas})
    assert settings.mongodb_uri is not None and settings.mongodb_uri.get_secret_value() == atlas
    bundled = bot_settings(compose, env).mongodb_uri
    assert bundled is not None and urlsplit(bundled.get_secret_value()).hostname == "mongo"

    services = compose["services"]
    profile = services["mongo"]["profiles"]
    assert len(profile) == 1 and "profiles" not in services["bot"]
    assert example_env()["COMPOSE_PROFILES"].split(",") == profile, "the one-command start includes it"
    dependency = services["bot"]["depends_on"]["mongo"]
    assert dependency["required"] is False, "without the profile the bot starts alone"
    assert dependency["condition"] == "service_healthy"


# `docker compose exec|run` lines in the docs and the compose file's comments.
DOC_FILES = ["docs/deploy.md", "docs/backup.md", "docs/mongosh.md", "docs/security.md", "README.md",
             "docker-compose.yml"]
HOST_VARIABLE = re.compile(r"\$\{?([A-Z][A-Z0-9_]*)")


def compose_commands(text: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line for line in joined.splitlines() if re.search(r"docker compose (exec|run)\b", line)]


def host_expanded(command: str) -> set[str]:
    """Variables the host's shell expands in a command: everything outside single quotes."""
    unquoted = re.sub(r"'[^']*'", "''", command)
    return set(HOST_VARIABLE.findall(unquoted))


def test_host_expanded_variables_helper() -> None:
    assert host_expanded('docker compose exec mongo mongosh -u "$MONGO_ROOT_USER" -p') == {"MONGO_ROOT_USER"}
    inside = "docker compose exec mongo sh -c 'mongosh -u \"$MONGO_INITDB_ROOT_USERNAME\"'"
    assert host_expanded(inside) == set()


@pytest.mark.parametrize("name", DOC_FILES)
def test_documented_compose_commands_leave_env_values_to_the_container(name: str) -> None:
    """Finding 15: `-u "$MONGO_ROOT_USER"` is expanded by the host's shell, where .env is not
    loaded: an empty user. Values from .env must be expanded inside the container."""
    env_names = set(example_env()) | set(MONGO_ENV)
    for command in compose_commands((ROOT / name).read_text()):
        leaked = host_expanded(command) & env_names
        assert not leaked, f"{name}: the host's shell expands {sorted(leaked)} in: {command.strip()}"


def test_backups_have_their_own_volume_and_a_retention_service(compose: dict[str, Any]) -> None:
    """Finding 16: backups shared bot-data (the outbox, the journal) and were never deleted."""
    services = compose["services"]
    mounts = dict(reversed(v.split(":")[:2]) for v in services["bot"]["volumes"])  # target: source
    assert mounts["/data/backups"] != mounts["/data"] and mounts["/data/backups"] in compose["volumes"]
    retention = services["backup-retention"]
    assert retention["volumes"] == [f"{mounts['/data/backups']}:/data/backups"], "it sees the backups only"
    assert retention["network_mode"] == "none"
    assert retention["command"] == ["python", "/app/scripts/docker/prune_backups.py"]
    assert retention["environment"]["DATA_DIR"] == "/data"
    assert retention["healthcheck"] == {"disable": True}, "the image's check asks the bot's /healthz"
    assert "/data/backups" in instructions()[index_of(instructions(), "RUN", "useradd")][1]


def test_retention_keeps_recent_and_newest_backups_and_nothing_else() -> None:
    from scripts.docker.prune_backups import to_delete

    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    names = ["20260301T000000Z-aaaaaa", "20260101T000000Z-bbbbbb", "20251201T000000Z-cccccc",
             "20251101T000000Z-dddddd", ".20260309T000000Z-eeeeee.partial",
             ".20260310T110000Z-ffffff.partial", "notes", "20250101T000000Z-XYZ"]
    assert to_delete(names, now, keep_days=30, keep_min=2) == [
        "20251101T000000Z-dddddd", "20251201T000000Z-cccccc", ".20260309T000000Z-eeeeee.partial"]
    assert to_delete(names, now, keep_days=30, keep_min=10) == [".20260309T000000Z-eeeeee.partial"]
    assert "20260301T000000Z-aaaaaa" not in to_delete(names, now, keep_days=30, keep_min=0)


def test_retention_deletes_on_disk_and_survives_what_it_cannot_delete(tmp_path: Path) -> None:
    env = {**os.environ, "DATA_DIR": str(tmp_path), "BACKUP_KEEP_DAYS": "1", "BACKUP_KEEP_MIN": "1"}
    backups = tmp_path / "backups"
    for name in ("20200101T000000Z-aaaaaa", "20200102T000000Z-bbbbbb", "keep-me"):
        (backups / name).mkdir(parents=True)
        (backups / name / "manifest.json").write_text("{}")
    done = subprocess.run([sys.executable, str(ROOT / "scripts/docker/prune_backups.py"), "--once"],
                          env=env, capture_output=True, text=True, timeout=60, check=True)
    assert sorted(p.name for p in backups.iterdir()) == ["20200102T000000Z-bbbbbb", "keep-me"]
    assert "deleted" in done.stdout and "20200101T000000Z-aaaaaa" in done.stdout


def test_the_docs_give_a_mongodump_route_and_copy_backups_out_without_nesting() -> None:
    """Finding 16: no mongodump route; `cp bot:/data/backups ./backups` nests on the second run."""
    backup = docs_text("backup.md")
    commands = compose_commands(backup)
    assert any("mongodump" in c and "--archive" in c and "exec -T mongo" in c for c in commands)
    assert any("mongorestore" in c and "--archive" in c and "exec -T mongo" in c for c in commands)
    copies = [line for line in backup.splitlines()  # shell lines, not the prose that warns
              if "docker compose cp bot:" in line and not line.startswith("`")]
    assert copies and all("bot:/data/backups/. " in c for c in copies), copies


def test_compose_refuses_a_second_bot_container(compose: dict[str, Any]) -> None:
    """Finding 17: `--scale bot=2` started a second bot; a fixed container name makes Compose refuse."""
    name = compose["services"]["bot"]["container_name"]
    assert interpolate(name, {"COMPOSE_PROJECT_NAME": "tracker"}) == "tracker-bot", "one per project"
    assert "--scale bot=2" in docs_text("deploy.md")


def test_the_proxy_setting_is_documented_for_compose() -> None:
    """Finding 18 (the code is in tests/app/wiring/test_proxy.py): .env reaches the bot (env_file)."""
    assert "DISCORD_PROXY" in example_env() and "DISCORD_PROXY" in docs_text("deploy.md")
