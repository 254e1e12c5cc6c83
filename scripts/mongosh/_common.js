// Shared helpers for the inspection scripts; loaded by each with load().
function envInt(name, fallback) {
  const value = process.env[name];
  if (value === undefined || value === "") {
    if (fallback === undefined) { throw new Error(`set ${name}`); }
    return fallback;
  }
  if (!/^[0-9]+$/.test(value)) { throw new Error(`${name} must be a number, got ${value}`); }
  return value;
}
// Discord ids are 64-bit: compare as Long, never as a JS double.
function idOf(text) { return Long.fromString(String(text)); }
// Day buckets are "YYYY-MM-DD" strings in the guild's time zone; a period of N days starts N-1 days ago.
function sinceDay(days) {
  const d = new Date(Date.now() - (days - 1) * 86400000);
  return d.toISOString().slice(0, 10);
}
function hms(seconds) {
  const s = Math.round(Number(seconds) || 0);
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}
