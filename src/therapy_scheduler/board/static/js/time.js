// Calendar arithmetic for the board. Instants stay UTC (Date / ISO strings ending in Z); days are
// calendar dates "YYYY-MM-DD" in the board's chosen IANA time zone, computed with Intl, never with
// hand-made offsets. Date-only arithmetic runs on UTC midnights, where no daylight saving exists.

const MINUTE = 60_000;
const formatters = new Map();

function formatter(key, options) {
  let f = formatters.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", options);
    formatters.set(key, f);
  }
  return f;
}

export function isValidZone(zone) {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export function allZones() {
  return typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
}

/** The calendar date of an instant in `zone`, as "YYYY-MM-DD". */
export function dateIn(instant, zone) {
  const parts = formatter(`d:${zone}`, {
    timeZone: zone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
  }).formatToParts(new Date(instant));
  const get = (type) => parts.find((p) => p.type === type).value;
  return `${get("year")}-${get("month")}-${get("day")}`;
}

export function todayIn(zone, now = Date.now()) {
  return dateIn(now, zone);
}

function utcMidnight(day) {
  const [y, m, d] = day.split("-").map(Number);
  return Date.UTC(y, m - 1, d);
}

export function addDays(day, n) {
  return new Date(utcMidnight(day) + n * 86_400_000).toISOString().slice(0, 10);
}

/** The Monday on or before `day`. */
export function mondayOf(day) {
  const weekday = new Date(utcMidnight(day)).getUTCDay(); // 0 = Sunday
  return addDays(day, -((weekday + 6) % 7));
}

export function weekDays(monday) {
  return Array.from({ length: 7 }, (_, i) => addDays(monday, i));
}

export function dayLabel(day) {
  return formatter("day", { timeZone: "UTC", weekday: "short", day: "numeric", month: "short" })
    .format(new Date(utcMidnight(day)));
}

export function longDayLabel(day) {
  return formatter("longday", {
    timeZone: "UTC",
    weekday: "long",
    day: "numeric",
    month: "long",
    year: "numeric",
  }).format(new Date(utcMidnight(day)));
}

export function timeLabel(instant, zone) {
  return formatter(`t:${zone}`, { timeZone: zone, hour: "numeric", minute: "2-digit" })
    .format(new Date(instant));
}

export function rangeLabel(start, end, zone) {
  return `${timeLabel(start, zone)}–${timeLabel(end, zone)}`;
}

export function dateTimeLabel(instant, zone) {
  return formatter(`dt:${zone}`, {
    timeZone: zone,
    weekday: "short",
    day: "numeric",
    month: "short",
    hour: "numeric",
    minute: "2-digit",
  }).format(new Date(instant));
}

export function minutesBetween(start, end) {
  return Math.round((Date.parse(end) - Date.parse(start)) / MINUTE);
}

export function addMinutes(instant, minutes) {
  return isoUtc(Date.parse(instant) + minutes * MINUTE);
}

/** "2026-03-09T14:00:00Z": the API's spelling of an instant. */
export function isoUtc(ms) {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** The first quarter hour at or after `ms`. */
export function ceilQuarterHour(ms) {
  const q = 15 * MINUTE;
  return Math.ceil(ms / q) * q;
}

export function countdownLabel(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const minutes = Math.floor(total / 60);
  const seconds = String(total % 60).padStart(2, "0");
  return `${minutes}:${seconds}`;
}
