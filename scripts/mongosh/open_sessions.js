// Open voice sessions: who is in voice now, since when, and how far the last checkpoint lags.
//   [GUILD=<guild id>] mongosh "$MONGODB_URI" --quiet scripts/mongosh/open_sessions.js
load(__dirname + "/_common.js");
const filter = process.env.GUILD ? { guild_id: idOf(envInt("GUILD")) } : {};
const now = nowMs();
let count = 0;
db.voice_sessions.find(filter).sort({ guild_id: 1, member_id: 1 }).forEach(s => {
  count += 1;
  const lag = Math.round((now - Number(s.checkpoint)) / 1000);
  print(`guild ${s.guild_id} member ${s.member_id} channel ${s.channel_id}  open since ` +
        `${new Date(Number(s.opened_at)).toISOString()}  checkpoint ${lag}s ago` +
        `${Number(s.camera) ? "  camera" : ""}${Number(s.stream) ? "  streaming" : ""}` +
        `${s.pending_op ? "  (credit being applied)" : ""}`);
});
print(`${count} open session(s)`);
