// Runs scripts/docker/mongo-healthcheck.js (a mongosh script) under node with a fake mongod, so
// tests/test_docker_files.py can check its decisions without MongoDB or Docker.
// argv: <script> <scenario JSON>. Scenario: {env, users: {"db.user": "password"}, root: [user, pw],
// setName, primary}. Prints one JSON line: {exit, printed, logins, commands, created}.
"use strict";
const fs = require("fs");
const vm = require("vm");

const [scriptPath, scenarioJson] = process.argv.slice(2);
const scenario = JSON.parse(scenarioJson);
const record = { exit: 0, printed: [], logins: [], commands: [], created: [] };

class Exit {
  constructor(code) { this.code = code; }
}

function authFailed() {
  const error = new Error("Authentication failed.");
  error.codeName = "AuthenticationFailed";
  return error;
}

function login(user, password, authDb) {
  record.logins.push(`${authDb}.${user}`);
  const ok = authDb === "admin"
    ? scenario.root[0] === user && scenario.root[1] === password
    : scenario.users[`${authDb}.${user}`] === password;
  if (!ok) throw authFailed();
  return { user, authDb };
}

function database(name, session) {
  return {
    getName: () => name,
    getSiblingDB: (other) => database(other, session),
    auth: (user, password) => { session.user = login(user, password, name); return { ok: 1 }; },
    runCommand: (command) => commandOn(name, command, session),
    adminCommand: (command) => commandOn("admin", command, session),
    getUser: (user) => {
      if (!session.user || session.user.authDb !== "admin") throw new Error("requires authentication");
      return `${name}.${user}` in scenario.users ? { user } : null;
    },
    createUser: (spec) => {
      if (!session.user || session.user.authDb !== "admin") throw new Error("requires authentication");
      record.created.push({ db: name, ...spec });
      scenario.users[`${name}.${spec.user}`] = spec.pwd;
      return { ok: 1 };
    },
  };
}

function commandOn(name, command, session) {
  const verb = Object.keys(command)[0];
  record.commands.push(verb);
  if (verb === "hello" || verb === "isMaster" || verb === "ping") {
    return scenario.setName
      ? { ok: 1, setName: scenario.setName, isWritablePrimary: scenario.primary }
      : { ok: 1, isWritablePrimary: false, isreplicaset: true };
  }
  if (verb === "connectionStatus") {
    return { ok: 1, authInfo: { authenticatedUsers: session.user ? [session.user] : [] } };
  }
  if (!session.user) throw new Error(`command ${verb} requires authentication`);
  if (verb === "replSetInitiate") { record.initiated = command.replSetInitiate; return { ok: 1 }; }
  if (verb === "replSetGetStatus") {
    if (!scenario.setName) { const e = new Error("no replset config"); e.codeName = "NotYetInitialized"; throw e; }
    return { ok: 1 };
  }
  throw new Error(`unexpected command ${verb}`);
}

const shellSession = {};
const sandbox = {
  process: { env: scenario.env },
  print: (...args) => record.printed.push(args.join(" ")),
  quit: (code) => { throw new Exit(code || 0); },
  db: database("admin", shellSession),
  connect: (url) => {
    const parsed = new URL(url);
    const authDb = parsed.searchParams.get("authSource") || parsed.pathname.slice(1);
    const session = {};
    session.user = login(decodeURIComponent(parsed.username), decodeURIComponent(parsed.password), authDb);
    return database(parsed.pathname.slice(1), session);
  },
  rs: {
    status: () => commandOn("admin", { replSetGetStatus: 1 }, shellSession),
    initiate: (config) => commandOn("admin", { replSetInitiate: config }, shellSession),
  },
  encodeURIComponent,
};
try {
  vm.runInNewContext(fs.readFileSync(scriptPath, "utf8"), sandbox, { filename: scriptPath });
} catch (error) {
  if (error instanceof Exit) record.exit = error.code;
  else { record.exit = 255; record.printed.push(`uncaught: ${error.message}`); }
}
console.log(JSON.stringify(record));
