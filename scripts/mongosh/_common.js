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
// "Now" in epoch ms: the clock, or NOW_MS=<epoch ms> to see the data as of a given moment.
function nowMs() { return process.env.NOW_MS ? Number(envInt("NOW_MS")) : Date.now(); }
function iso(ms) { return ms === null || ms === undefined ? "-" : new Date(Number(ms)).toISOString(); }
// Day buckets are "YYYY-MM-DD" strings in the guild's time zone; a period of N days starts N-1 days ago.
function sinceDay(days) {
  const d = new Date(nowMs() - (days - 1) * 86400000);
  return d.toISOString().slice(0, 10);
}
function hms(seconds) {
  const s = Math.round(Number(seconds) || 0);
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}
