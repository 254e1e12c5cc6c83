// Who invited whom. Per member: the inviter, code, source and time of their first counted join.
//   GUILD=<guild id> [MEMBER=<member id>] mongosh "$MONGODB_URI" --quiet scripts/mongosh/who_invited.js
// The members an inviter brought in (credited first joins, not reset; as `/invites who`):
//   GUILD=<guild id> INVITER=<member id> mongosh "$MONGODB_URI" --quiet scripts/mongosh/who_invited.js
load(__dirname + "/_common.js");
const guild = idOf(envInt("GUILD"));
const name = (n, id) => `${n || id} (${id})`;

function byMember() {
  const filter = { guild_id: guild, counted: "first" };
  if (process.env.MEMBER) { filter.member_id = idOf(envInt("MEMBER")); }
  let count = 0;
  db.joins.find(filter).sort({ joined_ms: 1, member_id: 1 }).forEach(j => {
    count += 1;
    const inviter = j.inviter_id ? name(j.inviter_name, j.inviter_id) : "nobody known";
    const code = j.code ? `code ${j.code}` : "no code";
    print(`${name(j.member_name, j.member_id)} <- ${inviter}, ${code}, source ${j.source}, ` +
          `joined ${iso(j.joined_ms)}${j.member_status === "left" ? ", left" : ""}`);
  });
  print(`${count} member(s)`);
}

function byInviter() {
  const inviter = idOf(envInt("INVITER"));
  let count = 0;
  db.joins.find({ guild_id: guild, credit_to: inviter, reset_id: "" }).sort({ joined_ms: 1, member_id: 1 })
    .forEach(j => {
      count += 1;
      const notes = [j.member_status === "left" ? "left" : "", j.fake_reason ? "fake: " + j.fake_reason : ""]
        .filter(Boolean).join(", ");
      print(`${name(j.member_name, j.member_id)}, code ${j.code || "-"}, source ${j.source}, ` +
            `joined ${iso(j.joined_ms)}${notes ? ", " + notes : ""}`);
    });
  print(`${count} member(s) brought in by ${inviter}`);
}

if (process.env.INVITER) { byInviter(); } else { byMember(); }
