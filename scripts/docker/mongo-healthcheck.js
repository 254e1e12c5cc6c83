// Healthcheck of the mongo service (docker-compose.yml), run with mongosh inside the container.
// Healthy = this node is the writable primary of the one-member replica set "rs0".
// On the very first run the replica set does not exist yet: initiate it, report unhealthy, and a
// later check (a few seconds on) sees the primary. Authenticates as root from the environment.
const admin = db.getSiblingDB("admin");
admin.auth(process.env.MONGO_INITDB_ROOT_USERNAME, process.env.MONGO_INITDB_ROOT_PASSWORD);
try {
  rs.status();
} catch (error) {
  if (error.codeName !== "NotYetInitialized") {
    throw error;
  }
  rs.initiate({ _id: "rs0", members: [{ _id: 0, host: "mongo:27017" }] });
  print("initiated replica set rs0");
  quit(1);
}
if (!admin.runCommand({ hello: 1 }).isWritablePrimary) {
  print("not the writable primary yet");
  quit(1);
}
