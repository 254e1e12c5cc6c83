#!/bin/bash
# Entrypoint of the mongo service (docker-compose.yml): make sure the replica set keyFile exists,
# then hand over to the official image's entrypoint with the same arguments.
#
# A replica set with authentication needs a keyFile (members authenticate to each other with it,
# even when there is only one). It is generated once, from the kernel's random source, into the
# mongo-keyfile volume: mode 400, owned by the mongodb user, as mongod requires.
set -euo pipefail

KEYFILE="${MONGO_KEYFILE:-/etc/mongo-keyfile/keyfile}"
KEYFILE_OWNER="${MONGO_KEYFILE_OWNER:-mongodb:mongodb}"
NEXT_ENTRYPOINT="${MONGO_NEXT_ENTRYPOINT:-/usr/local/bin/docker-entrypoint.sh}"

if [ ! -s "$KEYFILE" ]; then
    mkdir -p "$(dirname "$KEYFILE")"
    umask 077
    # 756 random bytes -> 1008 base64 characters (mongod accepts 6 to 1024).
    head -c 756 /dev/urandom | base64 -w 0 > "$KEYFILE.tmp"
    mv "$KEYFILE.tmp" "$KEYFILE"
    echo "mongo-entrypoint: generated the replica set keyFile $KEYFILE"
fi
chown "$KEYFILE_OWNER" "$KEYFILE"
chmod 400 "$KEYFILE"

exec "$NEXT_ENTRYPOINT" "$@"
