// The schedule board: sign-in, reference data, the week, filters and the two dialogs.
// Nothing but the bearer token is ever put in browser storage (and only when the user asks).

import { Api, ApiError } from "./api.js";
import { $, clear, option } from "./dom.js";
import { renderGrid, activeCellPosition, supervisionLinks, supervisionText } from "./grid.js";
import { BookingDialog } from "./booking.js";
import { SessionDialog } from "./session.js";
import {
  addDays,
  allZones,
  ceilQuarterHour,
  dateIn,
  isoUtc,
  isValidZone,
  longDayLabel,
  mondayOf,
  todayIn,
  weekDays,
} from "./time.js";

const TOKEN_KEY = "therapy-scheduler.board.token";
const ROWS_PER_PAGE = 20;
const BATCH_SIZE = 500;
const MAX_BATCHES = 40; // 20,000 sessions in one week view is a bug, not a week

const state = fresh();

function fresh() {
  return {
    api: null,
    role: null, // "staff" (admin or scheduler) | "therapist"
    me: null, // the therapist row of a therapist user
    orgZone: null,
    zone: null,
    monday: null,
    ref: null,
    filters: { therapistId: "", clientId: "", locationType: "", showCancelled: true },
    rowPage: 0,
    loadSeq: 0,
    week: null,
    supervision: null, // session id → its part in a supervision (grid.js supervisionLinks)
  };
}

// ---------------------------------------------------------------- status and errors

function announce(text) {
  const el = $("#status");
  el.textContent = "";
  // A fresh text node so that screen readers announce a repeated message again.
  requestAnimationFrame(() => {
    el.textContent = text;
  });
}

function showError(error) {
  const banner = $("#error");
  const text = error instanceof ApiError
    ? `${error.message} (${error.code}${error.requestId ? `, request ${error.requestId}` : ""})`
    : String(error && error.message ? error.message : error);
  $("#error-text").textContent = text;
  banner.hidden = false;
}

function hideError() {
  $("#error").hidden = true;
  $("#error-text").textContent = "";
}

// ---------------------------------------------------------------- sign-in / sign-out

async function signIn(token, remember) {
  hideError();
  const api = new Api({
    token,
    onUnauthorized: () => {
      if (state.api === api) signOut("Your token was rejected or has expired. Sign in again.");
    },
  });
  state.api = api;
  $("#sign-in-button").disabled = true;
  announce("Signing in…");
  try {
    await loadReference();
  } catch (error) {
    state.api = null;
    $("#sign-in-button").disabled = false;
    if (error.status !== 401) showError(error);
    return;
  }
  $("#sign-in-button").disabled = false;
  if (remember) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  $("#token").value = "";
  $("#sign-in").hidden = true;
  $("#board").hidden = false;
  $("#sign-out").hidden = false;
  const who = $("#who");
  who.textContent = state.role === "therapist"
    ? `Signed in as therapist ${state.me ? state.me.full_name : ""}`.trim()
    : "Signed in as scheduling staff";
  who.hidden = false;
  state.zone = state.orgZone;
  state.monday = mondayOf(todayIn(state.zone));
  fillFilters();
  await loadWeek();
  $("#grid").querySelector('[tabindex="0"]')?.focus();
}

function signOut(message) {
  const api = state.api;
  // An open hold is released while the token is still valid (the request leaves before it is dropped).
  booking.abandon();
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
  if (api) api.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  Object.assign(state, fresh());
  clear($("#grid"));
  for (const id of ["#summary", "#week-title", "#who", "#rows-label"]) $(id).textContent = "";
  for (const id of ["#f-therapist", "#f-client", "#f-location-type", "#f-zone"]) clear($(id));
  $("#board").hidden = true;
  $("#who").hidden = true;
  $("#sign-out").hidden = true;
  $("#row-pager").hidden = true;
  $("#sign-in").hidden = false;
  hideError();
  if (message) {
    $("#error-text").textContent = message;
    $("#error").hidden = false;
  }
  announce(message || "Signed out.");
  $("#token").focus();
}

// ---------------------------------------------------------------- reference data

async function loadReference() {
  const api = state.api;
  // Staff may list inactive therapists; a therapist gets 403 and sees only themselves.
  let therapists;
  try {
    therapists = (await api.get("/get-dropdown-data", { types: "therapists", include_inactive: true })).data.therapists;
    state.role = "staff";
  } catch (error) {
    if (error.status !== 403) throw error;
    therapists = (await api.get("/get-dropdown-data", { types: "therapists" })).data.therapists;
    state.role = "therapist";
    state.me = therapists.length === 1 ? therapists[0] : null;
  }
  const today = todayIn(Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC");
  const [lists, probe] = await Promise.all([
    api.get("/get-dropdown-data", {
      types: "clients,locations,location_types,service_codes,session_statuses,cancellation_reasons",
    }),
    // The organization's zone is what the API assumes when no time_zone is sent.
    api.get("/get-schedule-data-batch", { start_date: today, end_date: today, batch_size: 1 }),
  ]);
  const data = lists.data;
  state.orgZone = probe.request_parameters.time_zone;
  state.ref = {
    therapists,
    clients: data.clients || [],
    locations: data.locations || [],
    locationTypes: data.location_types || [],
    locationTypeLabels: Object.fromEntries((data.location_types || []).map((t) => [t.value, t.label])),
    serviceCodes: data.service_codes || [],
    statusLabels: Object.fromEntries((data.session_statuses || []).map((s) => [s.value, s.label])),
    cancellationReasons: data.cancellation_reasons || [],
    // Not listed by the API yet; used when a future dropdown type provides them.
    cancellationPolicies: data.cancellation_policies || [],
  };
}

function fillFilters() {
  const ref = state.ref;
  const therapist = $("#f-therapist");
  clear(therapist);
  therapist.append(option("", state.role === "therapist" ? "My sessions and my clients" : "All therapists"));
  for (const t of ref.therapists) {
    therapist.append(option(t.id, t.status === "active" ? t.full_name : `${t.full_name} (inactive)`));
  }
  const client = $("#f-client");
  clear(client);
  client.append(option("", "All clients"));
  for (const c of ref.clients) client.append(option(c.id, c.full_name));
  const locationType = $("#f-location-type");
  clear(locationType);
  locationType.append(option("", "All locations"));
  for (const t of ref.locationTypes) locationType.append(option(t.value, t.label));
  const zone = $("#f-zone");
  clear(zone);
  const zones = new Set([state.orgZone, Intl.DateTimeFormat().resolvedOptions().timeZone, ...allZones()]);
  for (const z of zones) {
    if (!z || !isValidZone(z)) continue;
    zone.append(option(z, z === state.orgZone ? `${z} (organization)` : z, z === state.zone));
  }
  $("#f-cancelled").checked = true;
}

// ---------------------------------------------------------------- the week

function rowsFor(sessions) {
  const ref = state.ref;
  if (state.role === "therapist") {
    // Own row first, then the other therapists of the caseload clients' sessions the API returned.
    const others = new Map();
    for (const s of sessions) {
      if (state.me && s.therapist_id === state.me.id) continue;
      if (state.filters.therapistId && s.therapist_id !== state.filters.therapistId) continue;
      if (!others.has(s.therapist_id)) {
        others.set(s.therapist_id, { id: s.therapist_id, full_name: s.therapist?.full_name || "Therapist" });
      }
    }
    const sorted = [...others.values()].sort((a, b) => a.full_name.localeCompare(b.full_name));
    return { rows: [...(state.me ? [state.me] : []), ...sorted], total: null };
  }
  let all = ref.therapists.filter((t) => t.status === "active");
  if (state.filters.therapistId) all = ref.therapists.filter((t) => t.id === state.filters.therapistId);
  const pages = Math.max(1, Math.ceil(all.length / ROWS_PER_PAGE));
  state.rowPage = Math.min(state.rowPage, pages - 1);
  const start = state.rowPage * ROWS_PER_PAGE;
  return { rows: all.slice(start, start + ROWS_PER_PAGE), total: all.length, start };
}

async function fetchSessions(params) {
  const sessions = [];
  let conflicts = [];
  let offset = 0;
  for (let batch = 0; batch < MAX_BATCHES; batch++) {
    const response = await state.api.get("/get-schedule-data-batch", {
      ...params,
      batch_size: BATCH_SIZE,
      offset,
      include_conflicts: batch === 0,
    });
    sessions.push(...response.data.sessions);
    if (batch === 0) conflicts = response.data.conflicts || [];
    const page = response.data.pagination;
    if (!page.has_more || page.next_offset == null) break;
    offset = page.next_offset;
  }
  return { sessions, conflicts };
}

async function loadWeek(message = "") {
  const seq = ++state.loadSeq;
  const days = weekDays(state.monday);
  const grid = $("#grid");
  const focus = activeCellPosition(grid);
  const hadFocus = grid.contains(document.activeElement);
  grid.setAttribute("aria-busy", "true");
  $("#loading").hidden = false;
  $("#week-title").textContent = `Week of ${longDayLabel(days[0])}`;
  $("#week-picker").value = days[0];
  announce(`Loading the week of ${longDayLabel(days[0])}…`);
  const base = { start_date: days[0], end_date: days[6], time_zone: state.zone };
  const staffRows = state.role === "staff" ? rowsFor([]) : null;
  const therapistIds = state.role === "staff"
    ? staffRows.rows.map((t) => t.id)
    : state.filters.therapistId ? [state.filters.therapistId] : [];
  const bookable = state.role === "staff" ? therapistIds : state.me ? [state.me.id] : [];
  try {
    const [week, availability] = await Promise.all([
      therapistIds.length || state.role === "therapist"
        ? fetchSessions({
            ...base,
            therapist_ids: therapistIds,
            client_ids: state.filters.clientId ? [state.filters.clientId] : [],
          })
        : Promise.resolve({ sessions: [], conflicts: [] }),
      bookable.length
        ? state.api.get("/get-schedule-data-batch", {
            ...base,
            therapist_ids: bookable,
            batch_size: 1,
            include_availability: true,
          })
        : Promise.resolve(null),
    ]);
    const waitlist = await loadWaitlist(days);
    if (seq !== state.loadSeq) return;
    state.week = {
      days,
      sessions: week.sessions,
      conflicts: week.conflicts,
      availability: availability ? availability.data.availability || [] : [],
      offers: waitlist.offers,
      waiting: waitlist.waiting,
    };
    hideError();
    draw(focus, hadFocus, message);
  } catch (error) {
    if (seq !== state.loadSeq) return;
    if (error.status !== 401) {
      showError(error);
      announce("The week could not be loaded.");
    }
  } finally {
    if (seq === state.loadSeq) {
      grid.setAttribute("aria-busy", "false");
      $("#loading").hidden = true;
    }
  }
}

// The waitlist's open offers for the week and its length (staff only; docs/WAITLIST.md).
async function loadWaitlist(days) {
  if (state.role !== "staff") return { offers: [], waiting: null };
  const end = new Date(Date.parse(`${days[6]}T00:00:00Z`) + 2 * 86_400_000).toISOString();
  const start = new Date(Date.parse(`${days[0]}T00:00:00Z`) - 86_400_000).toISOString();
  try {
    const response = await state.api.get("/waitlist/offers", { start, end });
    return { offers: response.offers || [], waiting: response.waiting };
  } catch (error) {
    return { offers: [], waiting: null };
  }
}

function draw(focus, hadFocus, message = "") {
  const { days, sessions: all, conflicts, availability } = state.week;
  const zone = state.zone;
  const now = state.api.now();
  const sessions = all.filter(
    (s) =>
      (state.filters.showCancelled || s.status !== "cancelled") &&
      (!state.filters.locationType || s.location_type === state.filters.locationType),
  );
  const conflictsBySession = new Map();
  for (const c of conflicts) {
    for (const id of c.session_ids || []) {
      if (!conflictsBySession.has(id)) conflictsBySession.set(id, []);
      conflictsBySession.get(id).push(c);
    }
  }
  // From every live session of the week, so that a supervision names its partner on another page.
  state.supervision = supervisionLinks(all);
  const slotsByCell = new Map();
  const windowsByCell = new Map();
  let freeCount = 0;
  for (const day of availability) {
    windowsByCell.set(`${day.therapist_id}|${day.date}`, day.windows || []);
    for (const slot of day.free_slots || []) {
      // Only what can still be booked: the future part of a slot, from the next quarter hour.
      const start = Math.max(Date.parse(slot.start_time), ceilQuarterHour(now));
      if (Date.parse(slot.end_time) - start < 15 * 60_000) continue;
      const usable = { start_time: isoUtc(start), end_time: slot.end_time };
      const key = `${day.therapist_id}|${dateIn(usable.start_time, zone)}`;
      if (!slotsByCell.has(key)) slotsByCell.set(key, []);
      slotsByCell.get(key).push(usable);
      freeCount++;
    }
  }
  const offersByCell = new Map();
  for (const offer of state.week.offers || []) {
    const key = `${offer.therapist_id}|${dateIn(offer.start_time, zone)}`;
    if (!offersByCell.has(key)) offersByCell.set(key, []);
    offersByCell.get(key).push(offer);
  }
  const clientNames = new Map((state.ref.clients || []).map((c) => [c.id, c.full_name]));
  const { rows, total, start } = state.role === "staff" ? rowsFor([]) : rowsFor(all);
  const visibleIds = new Set(rows.map((r) => r.id));
  const shown = sessions.filter((s) => visibleIds.has(s.therapist_id));
  const grid = $("#grid");
  const target = renderGrid(
    grid,
    {
      days,
      rows,
      sessions: shown,
      slotsByCell,
      offersByCell,
      clientName: (id) => clientNames.get(id) || "Client",
      windowsByCell,
      conflictsBySession,
      supervision: state.supervision,
      zone,
      today: todayIn(zone, now),
      statusLabels: state.ref.statusLabels,
      locationTypeLabels: state.ref.locationTypeLabels,
      canBook: (therapistId) => state.role === "staff" || (state.me && therapistId === state.me.id),
    },
    { onSession: openSession, onSlot: openBooking },
    focus,
  );
  if (hadFocus && target) target.focus();

  const pager = $("#row-pager");
  if (total !== null && total > ROWS_PER_PAGE) {
    pager.hidden = false;
    $("#rows-label").textContent = `Therapists ${start + 1}–${start + rows.length} of ${total}`;
    $("#rows-prev").disabled = state.rowPage === 0;
    $("#rows-next").disabled = start + rows.length >= total;
  } else {
    pager.hidden = true;
  }
  const flagged = shown.filter((s) => conflictsBySession.has(s.id)).length;
  const summary =
    `${shown.length} ${shown.length === 1 ? "session" : "sessions"}` +
    ` · ${flagged} with conflicts · ${freeCount} free ${freeCount === 1 ? "slot" : "slots"}` +
    (state.week.waiting == null
      ? ""
      : ` · ${(state.week.offers || []).length} open waitlist offers · ${state.week.waiting} waiting`) +
    ` · times in ${zone}`;
  $("#summary").textContent = summary;
  // A message of the action that caused this reload (booked, cancelled) stays first.
  announce(`${message ? `${message} ` : ""}Week of ${longDayLabel(days[0])}: ${summary}.`);
}

// ---------------------------------------------------------------- dialogs

let booking;
let details;

function openBooking(therapist, slot) {
  booking.open(therapist, slot);
}

function openSession(session) {
  const conflicts = state.week.conflicts.filter((c) => (c.session_ids || []).includes(session.id));
  details.open(session, conflicts, supervisionText(state.supervision?.get(session.id), state.zone));
}

function setUpDialogs() {
  const reference = () => ({ ...state.ref, preferredClientId: state.filters.clientId });
  booking = new BookingDialog($("#booking-dialog"), {
    get api() {
      return state.api;
    },
    reference,
    zone: () => state.zone,
    announce,
    showError,
    onBooked: (message) => loadWeek(message),
  });
  details = new SessionDialog($("#session-dialog"), {
    get api() {
      return state.api;
    },
    reference,
    zone: () => state.zone,
    announce,
    canCancel: (session) => state.role === "staff" || (state.me && session.therapist_id === state.me.id),
    onChanged: (message) => loadWeek(message),
  });
}

// ---------------------------------------------------------------- wiring

function goTo(monday) {
  state.monday = monday;
  loadWeek();
}

function wire() {
  $("#sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("#token").value.trim();
    if (!token) {
      $("#token").setAttribute("aria-invalid", "true");
      showError("Paste a token first.");
      $("#token").focus();
      return;
    }
    $("#token").removeAttribute("aria-invalid");
    signIn(token, $("#remember").checked);
  });
  $("#sign-out").addEventListener("click", () => signOut());
  $("#error-dismiss").addEventListener("click", hideError);
  $("#prev-week").addEventListener("click", () => goTo(addDays(state.monday, -7)));
  $("#next-week").addEventListener("click", () => goTo(addDays(state.monday, 7)));
  $("#this-week").addEventListener("click", () => goTo(mondayOf(todayIn(state.zone))));
  $("#week-picker").addEventListener("change", (event) => {
    if (event.target.value) goTo(mondayOf(event.target.value));
  });
  $("#rows-prev").addEventListener("click", () => {
    state.rowPage = Math.max(0, state.rowPage - 1);
    loadWeek();
  });
  $("#rows-next").addEventListener("click", () => {
    state.rowPage += 1;
    loadWeek();
  });
  $("#f-therapist").addEventListener("change", (event) => {
    state.filters.therapistId = event.target.value;
    state.rowPage = 0;
    loadWeek();
  });
  $("#f-client").addEventListener("change", (event) => {
    state.filters.clientId = event.target.value;
    loadWeek();
  });
  $("#f-location-type").addEventListener("change", (event) => {
    state.filters.locationType = event.target.value;
    if (state.week) draw(activeCellPosition($("#grid")), false);
  });
  $("#f-cancelled").addEventListener("change", (event) => {
    state.filters.showCancelled = event.target.checked;
    if (state.week) draw(activeCellPosition($("#grid")), false);
  });
  $("#f-zone").addEventListener("change", (event) => {
    if (!isValidZone(event.target.value)) return;
    state.zone = event.target.value;
    loadWeek();
  });
  setUpDialogs();
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) {
    $("#remember").checked = true;
    signIn(saved, true);
  }
}

wire();
