// Staff invite codes with invites, conversions and rate, counted as `/invites-admin staff list` counts them:
// invites = first joins (not reset) through the code attributed by invite, vanity or downtime diff;
// conversions = joins (not reset) whose conversion is credited to the staff member.
//   GUILD=<guild id> mongosh "$MONGODB_URI" --quiet scripts/mongosh/staff.js
load(__dirname + "/_common.js");
const guild = idOf(envInt("GUILD"));
const attributed = ["invite", "vanity", "downtime"];
let count = 0;
db.staff_codes.find({ guild_id: guild, status: "active" }).sort({ added_ms: 1 }).forEach(s => {
  count += 1;
  const invites = db.joins.countDocuments(
    { guild_id: guild, code: s.code, counted: "first", reset_id: "", source: { $in: attributed } });
  const conversions = db.joins.countDocuments({ guild_id: guild, converted_by: s.member_id, reset_id: "" });
  const rate = invites ? (100 * conversions / invites).toFixed(1) : "0.0";
  print(`${s.member_name || s.member_id} (${s.member_id})  code ${s.code}  invites ${invites}  ` +
        `conversions ${conversions}  rate ${rate}%`);
});
print(`${count} staff code(s)`);
