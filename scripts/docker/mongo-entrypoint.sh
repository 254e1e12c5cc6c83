#!/bin/bash
# Entrypoint of the mongo service (docker-compose.yml). Before the official image's entrypoint runs
# (which, on an empty data volume, creates the root user and then runs the init scripts):
#
# 1. Check the settings the init script needs to create the bot's user. The image runs its init
#    scripts only on an empty data volume and after it created root: an init script that fails
#    would leave root in place and the init skipped on every later start, with no bot user. So a
#    bad value stops here, before anything is written, and fixing .env is enough.
# 2. Make sure the replica set keyFile exists. A replica set with authentication needs one
#    (members authenticate to each other with it, even when there is only one). It is generated
#    once, from the kernel's random source, into the mongo-keyfile volume: mode 400, owned by the
#    mongodb user, as mongod requires.
# 3. Size WiredTiger's cache to the container's memory limit. mongod sizes it from the host's RAM
#    unless told: 50% of (limit - 1 GiB), at least 0.25 GB, MongoDB's own rule applied to the limit.
#
# Then hand over to the official image's entrypoint with the same arguments.
set -euo pipefail

KEYFILE="${MONGO_KEYFILE:-/etc/mongo-keyfile/keyfile}"
KEYFILE_OWNER="${MONGO_KEYFILE_OWNER:-mongodb:mongodb}"
NEXT_ENTRYPOINT="${MONGO_NEXT_ENTRYPOINT:-/usr/local/bin/docker-entrypoint.sh}"
# cgroup v2, then v1: the first readable one holds the container's memory limit.
CGROUP_MEMORY_FILES="${MONGO_CGROUP_MEMORY_FILES:-/sys/fs/cgroup/memory.max:/sys/fs/cgroup/memory/memory.limit_in_bytes}"

fail() {
    echo "mongo-entrypoint: $*; nothing was created: fix .env, then docker compose up -d" >&2
    exit 64
}

# --- 1. the bot's user -----------------------------------------------------------------------------
app_user="${MONGO_APP_USER:-}"
app_password="${MONGO_APP_PASSWORD:-}"
database="${MONGODB_DB:-tracker}"
[ -n "${MONGO_INITDB_ROOT_USERNAME:-}" ] || fail "MONGO_ROOT_USER is empty"
[ -n "${MONGO_INITDB_ROOT_PASSWORD:-}" ] || fail "MONGO_ROOT_PASSWORD is empty"
[[ "$app_user" =~ ^[A-Za-z0-9._-]+$ ]] || fail "MONGO_APP_USER must be letters, digits, '.', '_' or '-'"
# It goes into the bot's connection string unencoded: only characters a URI leaves as they are.
[[ "$app_password" =~ ^[A-Za-z0-9._~-]+$ ]] || fail "MONGO_APP_PASSWORD must be letters, digits, '.', '_', '~' or '-'"
[ "$app_user" != "$MONGO_INITDB_ROOT_USERNAME" ] || fail "MONGO_APP_USER must differ from MONGO_ROOT_USER"
[[ "$database" =~ ^[A-Za-z0-9_-]{1,63}$ ]] || fail "MONGODB_DB must be 1 to 63 letters, digits, '_' or '-'"

# --- 2. the keyFile --------------------------------------------------------------------------------
if [ ! -s "$KEYFILE" ]; then
    mkdir -p "$(dirname "$KEYFILE")"
    (
        umask 077
        # 756 random bytes -> 1008 base64 characters (mongod accepts 6 to 1024).
        head -c 756 /dev/urandom | base64 -w 0 > "$KEYFILE.tmp"
    )
    mv "$KEYFILE.tmp" "$KEYFILE"
    echo "mongo-entrypoint: generated the replica set keyFile $KEYFILE"
fi
chown "$KEYFILE_OWNER" "$KEYFILE"
chmod 400 "$KEYFILE"

# --- 3. the WiredTiger cache -----------------------------------------------------------------------
memory_limit_bytes() {
    local file value
    IFS=: read -ra files <<< "$CGROUP_MEMORY_FILES"
    for file in "${files[@]}"; do
        if [ -r "$file" ]; then
            value="$(tr -d '[:space:]' < "$file")"
            # "max" (v2) or a huge number (v1, about 2^63): no limit.
            if [[ "$value" =~ ^[0-9]+$ ]] && [ "${#value}" -lt 16 ]; then
                echo "$value"
            fi
            return 0
        fi
    done
}

args=("$@")
if [ "${1:-}" = "mongod" ] && [[ " $* " != *" --wiredTigerCacheSizeGB "* ]]; then
    limit="$(memory_limit_bytes)"
    if [ -n "$limit" ]; then
        cache_mib=$(( (limit / 1048576 - 1024) / 2 ))
        [ "$cache_mib" -ge 256 ] || cache_mib=256
        hundredths=$(( cache_mib * 100 / 1024 ))
        cache_gb="$(printf '%d.%02d' $(( hundredths / 100 )) $(( hundredths % 100 )))"
        args+=("--wiredTigerCacheSizeGB" "$cache_gb")
        echo "mongo-entrypoint: memory limit $(( limit / 1048576 )) MiB: WiredTiger cache ${cache_gb} GB"
    fi
fi

exec "$NEXT_ENTRYPOINT" "${args[@]}"
