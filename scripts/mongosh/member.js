// A member's all-time totals and their day buckets.
//   GUILD=<guild id> MEMBER=<member id> [DAYS=30] mongosh "$MONGODB_URI" --quiet scripts/mongosh/member.js
load(__dirname + "/_common.js");
const guild = idOf(envInt("GUILD")), member = idOf(envInt("MEMBER")), days = Number(envInt("DAYS", "30"));
const total = db.activity.findOne({ kind: "total", guild_id: guild, member_id: member }) || {};
print(`member ${member} in guild ${guild}: messages ${total.messages || 0}, voice ${hms(total.voice_s)}, ` +
      `camera on ${hms(total.cam_on_s)}, camera off ${hms(total.cam_off_s)}, streaming ${hms(total.stream_s)}`);
db.activity.find({ kind: "day", guild_id: guild, member_id: member, day: { $gte: sinceDay(days) } })
  .sort({ day: 1 })
  .forEach(d => print(`${d.day}  messages ${d.messages || 0}  voice ${hms(d.voice_s)}  camera on ${hms(d.cam_on_s)}`));
