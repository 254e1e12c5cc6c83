"""The Dockerfile and docker-compose.yml, checked without a Docker engine.

hadolint lints the Dockerfile, check-jsonschema validates the compose file against the Compose
specification, and the assertions here check what the deploy relies on: replica set with auth and
a keyFile, least-privilege app user, credentials from .env, named volumes, healthchecks, restart
policy, start order, nothing published, time for the graceful shutdown.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from app.wiring.bot import SHUTDOWN_HOOK_TIMEOUT
from app.wiring.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}")


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


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} on a string."""

    def one(match: re.Match[str]) -> str:
        name, kind, arg = match.groups()
        current = env.get(name, "")
        if kind == "?" and not current:
            raise ValueError(f"{name}: {arg}")
        return current if current or kind != "-" else arg

    return VARIABLE.sub(one, value)


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
    assert mongo["image"] == "mongo:8"
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
    assert 'rs.initiate({ _id: "rs0", members: [{ _id: 0, host: "mongo:27017" }] })' in health
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
    uri = urlsplit(bot_env["MONGODB_URI"])
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


def test_every_compose_variable_is_documented_in_env_example() -> None:
    used = set(VARIABLE.findall((ROOT / "docker-compose.yml").read_text()))
    names = {name for name, _, _ in used}
    assert names <= set(example_env()), f"undocumented: {sorted(names - set(example_env()))}"
    defaults = {name: default for name, kind, default in used if kind == "-"}
    for name, default in defaults.items():
        assert str(Settings.model_fields[name.lower()].default) == default, f"{name} default differs"


def test_health_restart_order_ports_and_grace_period(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"mongo", "bot"}
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
        assert service["healthcheck"]["test"][0] == "CMD", name
        assert "ports" not in service, f"{name} publishes nothing on the host"
    bot = services["bot"]
    assert bot["depends_on"]["mongo"]["condition"] == "service_healthy"
    assert bot["healthcheck"]["test"] == ["CMD", "python", "/app/scripts/docker/healthcheck.py"]
    assert bot["environment"]["HEALTH_PORT"] == "8080"
    assert bot["env_file"] == ".env"
    assert bot["volumes"] == ["bot-data:/data"] and bot["environment"]["DATA_DIR"] == "/data"
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
