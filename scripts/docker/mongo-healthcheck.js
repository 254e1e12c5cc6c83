// Healthcheck of the mongo service (docker-compose.yml), run with mongosh inside the container on
// an unauthenticated connection to 127.0.0.1. Healthy = this node is the writable primary of the
// one-member replica set "rs0" AND the bot's user (MONGO_APP_USER / MONGO_APP_PASSWORD) can log in.
//
// It does not depend on the root password once the replica set exists: `hello` needs no login,
// and the bot's user logs in with its own password. Root (MONGO_INITDB_ROOT_*, which MongoDB reads
// only on the first start of an empty volume) is used in two cases only:
// - the replica set has no configuration yet (the very first start, right after the image created
//   root from those same variables): initiate it, report unhealthy, a later check sees the primary;
// - the bot's user cannot log in and does not exist (its creation failed on the first start):
//   create it, report unhealthy, the next check logs in with it.
// Any other failure is printed (docker inspect shows it) and reported unhealthy.
const env = process.env;
const dbName = env.MONGODB_DB || "tracker";
const appUser = env.MONGO_APP_USER;
const appPassword = env.MONGO_APP_PASSWORD;

function local(user, password, authDb) {
  const credentials = `${encodeURIComponent(user)}:${encodeURIComponent(password)}@`;
  return connect(
    `mongodb://${credentials}127.0.0.1:27017/${authDb}?authSource=${authDb}&directConnection=true`
  );
}

function asRoot(why) {
  try {
    return local(env.MONGO_INITDB_ROOT_USERNAME || "", env.MONGO_INITDB_ROOT_PASSWORD || "", "admin");
  } catch (error) {
    print(`${why}, and the root login failed (${error.message}): see docs/deploy.md, "Repair the app user"`);
    quit(1);
  }
}

const hello = db.adminCommand({ hello: 1 }); // answered without authentication
if (!hello.setName) {
  // Started with --replSet rs0, but no replica set configuration yet.
  asRoot("the replica set rs0 is not initiated").adminCommand({
    replSetInitiate: { _id: "rs0", members: [{ _id: 0, host: "mongo:27017" }] },
  });
  print("initiated replica set rs0");
  quit(1);
}
if (!hello.isWritablePrimary) {
  print("not the writable primary yet");
  quit(1);
}

let appLoggedIn = false;
try {
  const status = local(appUser, appPassword, dbName).runCommand({ connectionStatus: 1 });
  appLoggedIn = status.authInfo.authenticatedUsers.length > 0;
} catch (error) {
  appLoggedIn = false;
}
if (!appLoggedIn) {
  const target = asRoot(`user ${appUser} cannot log in to ${dbName}`).getSiblingDB(dbName);
  if (target.getUser(appUser) !== null) {
    print(`user ${appUser} exists but MONGO_APP_PASSWORD is not its password: see docs/deploy.md`);
    quit(1);
  }
  target.createUser({ user: appUser, pwd: appPassword, roles: [{ role: "readWrite", db: dbName }] });
  print(`user ${appUser} was missing: created with readWrite on ${dbName}`);
  quit(1);
}
