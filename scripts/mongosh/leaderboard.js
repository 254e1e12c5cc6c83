// Leaderboard for a period: METRIC=messages|voice_s|cam_on_s|stream_s, DAYS=0 for all time.
//   GUILD=<guild id> METRIC=voice_s DAYS=7 [LIMIT=10] mongosh "$MONGODB_URI" --quiet scripts/mongosh/leaderboard.js
load(__dirname + "/_common.js");
const guild = idOf(envInt("GUILD")), days = Number(envInt("DAYS", "0")), limit = Number(envInt("LIMIT", "10"));
const metric = process.env.METRIC || "voice_s";
if (!["messages", "voice_s", "cam_on_s", "cam_off_s", "stream_s"].includes(metric)) {
  throw new Error(`METRIC must be messages, voice_s, cam_on_s, cam_off_s or stream_s`);
}
const match = days > 0 ? { guild_id: guild, kind: "day", day: { $gte: sinceDay(days) } }
                       : { guild_id: guild, kind: "total" };
const rows = db.activity.aggregate([
  { $match: match },
  { $group: { _id: "$member_id", value: { $sum: "$" + metric } } },
  { $match: { value: { $gt: 0 } } },
  { $sort: { value: -1, _id: 1 } },
  { $limit: limit },
]).toArray();
print(`${metric} leaderboard, ${days > 0 ? "last " + days + " days" : "all time"}:`);
rows.forEach((r, i) => print(`${i + 1}. ${r._id}  ${metric === "messages" ? r.value : hms(r.value)}`));
