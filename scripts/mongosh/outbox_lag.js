// Outbox lag: the writes the bot keeps in its local outbox while MongoDB does not take them, as the
// bot reported them (lifecycle {_id: "status"}, written every minute while MongoDB answers).
// Exits 1 when the oldest waiting write is older than MAX_LAG_SECONDS (default 300) or the bot has
// not reported for 3 minutes; 0 otherwise. For a monitor:
//   [MAX_LAG_SECONDS=300] mongosh "$MONGODB_URI" --quiet scripts/mongosh/outbox_lag.js
load(__dirname + "/_common.js");
const maxLag = Number(envInt("MAX_LAG_SECONDS", "300"));
const silentAfter = 180;
const now = nowMs();
const status = db.lifecycle.findOne({ _id: "status" });
if (!status || status.reported_ms === undefined || status.reported_ms === null) {
  print("PROBLEM: the bot has never reported its outbox (no lifecycle status document)");
  quit(1);
}
const reportedAgo = Math.round((now - Number(status.reported_ms)) / 1000);
const depth = Number(status.outbox_depth || 0);
const oldest = status.oldest_waiting_ms;
const lag = depth > 0 && oldest !== null && oldest !== undefined ? Math.round((now - Number(oldest)) / 1000) : 0;
print(`reported ${iso(status.reported_ms)} (${reportedAgo}s ago): ${depth} write(s) waiting` +
      (depth > 0 ? `, oldest since ${iso(oldest)} (${lag}s)` : ""));
const problems = [];
if (reportedAgo > silentAfter) { problems.push(`the bot has not reported for ${reportedAgo}s (over ${silentAfter}s)`); }
if (lag > maxLag) { problems.push(`writes have waited ${lag}s (over MAX_LAG_SECONDS=${maxLag})`); }
if (problems.length) {
  problems.forEach(p => print(`PROBLEM: ${p}`));
  quit(1);
}
print("OK");
