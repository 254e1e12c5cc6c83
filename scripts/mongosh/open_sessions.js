// Open voice sessions: who is in voice now, since when, and how far the last checkpoint lags.
// The directory `voice_sessions` lists them; each session's state is in the member's all-time
// activity document (`voice_open`), or, for an entry a version before issue 16 left, in the entry.
//   [GUILD=<guild id>] mongosh "$MONGODB_URI" --quiet scripts/mongosh/open_sessions.js
load(__dirname + "/_common.js");
const filter = process.env.GUILD ? { guild_id: idOf(envInt("GUILD")) } : {};
const now = nowMs();
let count = 0;
db.voice_sessions.find(filter).sort({ guild_id: 1, member_id: 1 }).forEach(entry => {
  const total = db.activity.findOne({ _id: `t:${entry.guild_id}:${entry.member_id}` }) || {};
  const s = entry.checkpoint !== undefined ? entry : total.voice_open;
  if (!s) return;  // listed, but closed or not written yet
  count += 1;
  const lag = Math.round((now - Number(s.checkpoint)) / 1000);
  print(`guild ${entry.guild_id} member ${entry.member_id} channel ${s.channel_id}  open since ` +
        `${new Date(Number(s.opened_at)).toISOString()}  checkpoint ${lag}s ago` +
        `${Number(s.camera) ? "  camera" : ""}${Number(s.stream) ? "  streaming" : ""}` +
        `${entry.pending_op ? "  (credit being applied)" : ""}`);
});
print(`${count} open session(s)`);
