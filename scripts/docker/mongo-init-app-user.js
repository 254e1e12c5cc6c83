// Runs once, on the first start of an empty data volume (mounted into
// /docker-entrypoint-initdb.d/ by docker-compose.yml), before authentication is switched on.
// Creates the bot's own user: readWrite on the bot's database only, nothing on admin or others.
// The image created root just before and will not run this again on that volume: its inputs were
// checked by mongo-entrypoint.sh before root existed, and if it fails anyway the healthcheck
// (mongo-healthcheck.js) creates the missing user as root on a later run.
const dbName = process.env.MONGODB_DB || "tracker";
const user = process.env.MONGO_APP_USER;
const pwd = process.env.MONGO_APP_PASSWORD;
if (!user || !pwd) {
  throw new Error("MONGO_APP_USER and MONGO_APP_PASSWORD must be set in .env");
}
if (user === process.env.MONGO_INITDB_ROOT_USERNAME) {
  throw new Error("MONGO_APP_USER must differ from MONGO_ROOT_USER");
}
db.getSiblingDB(dbName).createUser({
  user: user,
  pwd: pwd,
  roles: [{ role: "readWrite", db: dbName }],
});
print(`created user ${user} with readWrite on ${dbName}`);
