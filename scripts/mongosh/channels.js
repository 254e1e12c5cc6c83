// Top channels by messages for a period (the channel-day documents, kind "chday"; a thread's
// messages are counted under its parent channel), like /server stats.
//   GUILD=<guild id> [DAYS=30] [LIMIT=10] mongosh "$MONGODB_URI" --quiet scripts/mongosh/channels.js
load(__dirname + "/_common.js");
const guild = idOf(envInt("GUILD")), days = Number(envInt("DAYS", "30")), limit = Number(envInt("LIMIT", "10"));
const rows = db.activity.aggregate([
  { $match: { guild_id: guild, kind: "chday", day: { $gte: sinceDay(days) } } },
  { $group: { _id: "$channel_id", messages: { $sum: "$messages" } } },
  { $match: { messages: { $gt: 0 } } },
  { $sort: { messages: -1, _id: 1 } },
]).toArray();
const whole = rows.reduce((sum, r) => sum + Number(r.messages), 0);
print(`top channels of guild ${guild}, last ${days} days: ${whole} messages in ${rows.length} channels`);
rows.slice(0, limit).forEach((r, i) =>
  print(`${i + 1}. ${r._id}  ${r.messages}  ${(100 * Number(r.messages) / whole).toFixed(1)}%`));
