// The week grid: therapists as rows, days as columns (ARIA grid with a roving tab stop).

import { h, $$ } from "./dom.js";
import { dayLabel, longDayLabel, rangeLabel, dateIn, dateTimeLabel, minutesBetween } from "./time.js";

const STATUS_LABELS = {
  scheduled: "Scheduled",
  in_progress: "In progress",
  completed: "Completed",
  cancelled: "Cancelled",
  no_show: "No-show",
};

export const CONFLICT_LABELS = {
  outside_availability: "Outside availability",
  authorization_expired: "Authorization expired",
  authorization_exhausted: "Authorization exhausted",
  insufficient_break: "Insufficient break",
  insufficient_travel_time: "Insufficient travel time",
  supervision_unsupported: "Supervision stands alone",
};

/**
 * Supervision (docs/BOOKING.md "Supervision overlap"): two live sessions of one client overlap only
 * when one supervises the other (a BCBA's 97155 inside an RBT's 97153), so a session lying within a
 * longer live session of its client, with another therapist, supervises it. Returns session id →
 * {supervises: session} for the supervision and {supervisedBy: [sessions]} for the supervised one.
 */
export function supervisionLinks(sessions) {
  const byClient = new Map();
  for (const s of sessions) {
    if (s.status === "cancelled" || !s.client_id) continue;
    if (!byClient.has(s.client_id)) byClient.set(s.client_id, []);
    byClient.get(s.client_id).push(s);
  }
  const links = new Map();
  const link = (id) => {
    if (!links.has(id)) links.set(id, { supervises: null, supervisedBy: [] });
    return links.get(id);
  };
  for (const list of byClient.values()) {
    for (const inner of list) {
      const start = Date.parse(inner.start_time);
      const end = Date.parse(inner.end_time);
      const outer = list.find(
        (o) =>
          o !== inner &&
          o.therapist_id !== inner.therapist_id &&
          Date.parse(o.start_time) <= start &&
          end <= Date.parse(o.end_time) &&
          Date.parse(o.end_time) - Date.parse(o.start_time) > end - start,
      );
      if (!outer) continue;
      link(inner.id).supervises = outer;
      link(outer.id).supervisedBy.push(inner);
    }
  }
  return links;
}

function therapistName(session) {
  return (session.therapist && session.therapist.full_name) || "another therapist";
}

/** The words that say a session's part in a supervision, or null. */
export function supervisionText(link, zone) {
  if (!link) return null;
  if (link.supervises) {
    const o = link.supervises;
    return `Supervises ${therapistName(o)}'s ${o.service_code} (${rangeLabel(o.start_time, o.end_time, zone)})`;
  }
  if (link.supervisedBy.length) {
    const who = link.supervisedBy
      .map((s) => `${therapistName(s)} ${rangeLabel(s.start_time, s.end_time, zone)}`)
      .join(", ");
    return `Supervised by ${who}`;
  }
  return null;
}

export function statusLabel(status, labels) {
  return (labels && labels[status]) || STATUS_LABELS[status] || status;
}

/**
 * Render the grid into `root`.
 * model: { days, rows: [{id, full_name, credential, status}], sessions, slotsByCell, windowsByCell,
 *          conflictsBySession, supervision (supervisionLinks), zone, statusLabels, locationTypeLabels,
 *          canBook(therapistId) }
 * handlers: { onSession(session, button), onSlot(row, slot, button) }
 */
export function renderGrid(root, model, handlers, focus) {
  const { days, rows, zone } = model;
  const byCell = new Map();
  for (const session of model.sessions) {
    const key = `${session.therapist_id}|${dateIn(session.start_time, zone)}`;
    if (!byCell.has(key)) byCell.set(key, []);
    byCell.get(key).push(session);
  }

  root.replaceChildren();
  root.setAttribute("aria-rowcount", String(rows.length + 1));
  root.setAttribute("aria-colcount", String(days.length + 1));

  const header = h(
    "div",
    { role: "row", class: "grid-row grid-head", "aria-rowindex": 1 },
    h("div", { role: "columnheader", class: "corner", "aria-colindex": 1 }, "Therapist"),
    days.map((day, i) =>
      h(
        "div",
        {
          role: "columnheader",
          class: `day-head${day === model.today ? " today" : ""}`,
          "aria-colindex": i + 2,
          "aria-label": longDayLabel(day) + (day === model.today ? " (today)" : ""),
        },
        dayLabel(day),
      ),
    ),
  );
  root.append(header);

  if (rows.length === 0) {
    root.append(
      h(
        "div",
        { role: "row", class: "grid-row", "aria-rowindex": 2 },
        h("div", { role: "gridcell", class: "empty-grid", "aria-colspan": days.length + 1 },
          "No therapists match these filters."),
      ),
    );
  }

  rows.forEach((row, r) => {
    const rowEl = h("div", {
      role: "row",
      class: "grid-row",
      "aria-rowindex": r + 2,
      dataset: { therapistId: row.id },
    });
    rowEl.append(
      h(
        "div",
        { role: "rowheader", class: "therapist", "aria-colindex": 1, tabindex: -1 },
        h("span", { class: "therapist-name" }, row.full_name),
        row.credential ? h("span", { class: "credential" }, row.credential) : null,
        row.status && row.status !== "active" ? h("span", { class: "inactive" }, "inactive") : null,
      ),
    );
    days.forEach((day, c) => {
      const key = `${row.id}|${day}`;
      rowEl.append(renderCell(model, handlers, row, day, key, byCell.get(key) || [], c));
    });
    root.append(rowEl);
  });

  setUpKeyboard(root);
  const cells = cellMatrix(root);
  const target =
    (focus && cells[focus.row] && cells[focus.row][focus.col]) || (cells[0] && cells[0][0]);
  if (target) target.tabIndex = 0;
  return target;
}

function renderCell(model, handlers, row, day, key, sessions, c) {
  const { zone } = model;
  const windows = model.windowsByCell.get(key);
  const slots = model.canBook(row.id) ? model.slotsByCell.get(key) || [] : [];
  // Open waitlist offers (docs/WAITLIST.md): held for a waiting client while the clinic calls.
  const offers = (model.offersByCell && model.offersByCell.get(key)) || [];
  const items = [
    ...sessions.map((s) => ({ start: s.start_time, session: s })),
    ...offers.map((offer) => ({ start: offer.start_time, offer })),
    ...slots.map((slot) => ({ start: slot.start_time, slot })),
  ].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.slot ? 1 : -1));

  const cell = h("div", {
    role: "gridcell",
    class: `cell${day === model.today ? " today" : ""}`,
    "aria-colindex": c + 2,
    tabindex: -1,
    dataset: { date: day, therapistId: row.id },
    "aria-label": `${row.full_name}, ${longDayLabel(day)}: ${describeCell(sessions, slots, windows, offers)}`,
  });
  if (windows !== undefined) {
    cell.append(
      h(
        "div",
        { class: "hours", "aria-hidden": "true" },
        windows.length ? windows.map((w) => rangeLabel(w.start_time, w.end_time, zone)).join(", ") : "Not working",
      ),
    );
  }
  let previous = null;
  for (const item of items) {
    if (item.session && item.session.status !== "cancelled") {
      if (previous) {
        const band = travelBand(model, previous, item.session);
        if (band) cell.append(band);
      }
      previous = item.session;
    }
    cell.append(
      item.session
        ? sessionBlock(model, handlers, item.session)
        : item.offer
          ? offerBlock(model, item.offer)
          : slotBlock(model, handlers, row, item.slot),
    );
  }
  return cell;
}

// Same place as the booking rules (docs/BOOKING.md "Travel time"): the same location, or, when either
// session has none, the same location type.
function samePlace(a, b) {
  if (a.location_id && b.location_id) return a.location_id === b.location_id;
  return a.location_type === b.location_type;
}

// A band between consecutive sessions at different places: the time between them, and when the
// schedule's conflicts say it is too short, the trip it needs.
function travelBand(model, before, after) {
  if (samePlace(before, after)) return null;
  if (before.location_type === "telehealth" || after.location_type === "telehealth") return null;
  const gap = minutesBetween(before.end_time, after.start_time);
  if (gap < 0) return null;
  const short = (model.conflictsBySession.get(after.id) || []).find(
    (c) => c.type === "insufficient_travel_time" && c.session_ids[0] === before.id,
  );
  const text = short
    ? `Travel ${short.travel_minutes} min, only ${gap} min between`
    : `Travel · ${gap} min between places`;
  return h("div", { class: `travel${short ? " travel-short" : ""}`, dataset: { travel: short ? "short" : "ok" } }, text);
}

function describeCell(sessions, slots, windows, offers = []) {
  const parts = [];
  parts.push(sessions.length === 1 ? "1 session" : `${sessions.length} sessions`);
  if (offers.length) parts.push(offers.length === 1 ? "1 waitlist offer" : `${offers.length} waitlist offers`);
  if (slots.length) parts.push(slots.length === 1 ? "1 free slot" : `${slots.length} free slots`);
  if (windows !== undefined && windows.length === 0) parts.push("not working");
  return parts.join(", ");
}

function sessionBlock(model, handlers, session) {
  const { zone } = model;
  const conflicts = model.conflictsBySession.get(session.id) || [];
  const client = session.client && session.client.full_name ? session.client.full_name : "Client";
  const status = statusLabel(session.status, model.statusLabels);
  const place = model.locationTypeLabels[session.location_type] || session.location_type || "";
  const time = rangeLabel(session.start_time, session.end_time, zone);
  const flags = conflicts.map((c) => CONFLICT_LABELS[c.type] || c.type);
  const link = model.supervision ? model.supervision.get(session.id) : null;
  const supervision = supervisionText(link, zone);
  const role = link ? (link.supervises ? " supervising" : " supervised") : "";
  const label = [time, client, session.service_code, place, status, supervision, ...flags]
    .filter(Boolean)
    .join(", ");
  const button = h(
    "button",
    {
      type: "button",
      class: `block session status-${session.status}${role}${conflicts.length ? " has-conflict" : ""}`,
      tabindex: -1,
      "aria-label": label,
      "aria-haspopup": "dialog",
      dataset: {
        sessionId: session.id,
        status: session.status,
        ...(link && link.supervises ? { supervises: link.supervises.id } : {}),
        ...(link && link.supervisedBy.length
          ? { supervisedBy: link.supervisedBy.map((s) => s.id).join(" ") }
          : {}),
      },
    },
    h("span", { class: "block-time" }, time),
    h("span", { class: "block-client" }, client),
    h("span", { class: "block-meta" }, [session.service_code, place, status].filter(Boolean).join(" · ")),
    supervision ? h("span", { class: "block-supervision" }, supervision) : null,
    flags.length ? h("span", { class: "block-flag" }, `⚠ ${flags.join(", ")}`) : null,
  );
  button.addEventListener("click", () => handlers.onSession(session, button));
  return button;
}

function offerBlock(model, offer) {
  const time = rangeLabel(offer.start_time, offer.end_time, model.zone);
  const client = model.clientName ? model.clientName(offer.client_id) : "Client";
  const until = dateTimeLabel(offer.expires_at, model.zone);
  return h(
    "div",
    {
      class: "block offer",
      "aria-label": `Waitlist offer ${time} to ${client}, open until ${until}`,
      dataset: { offerId: offer.id },
    },
    h("span", { class: "block-time" }, time),
    h("span", { class: "block-client" }, client),
    h("span", { class: "block-meta" }, `Waitlist offer · until ${until}`),
  );
}

function slotBlock(model, handlers, row, slot) {
  const time = rangeLabel(slot.start_time, slot.end_time, model.zone);
  const minutes = minutesBetween(slot.start_time, slot.end_time);
  const button = h(
    "button",
    {
      type: "button",
      class: "block free",
      tabindex: -1,
      "aria-label": `Free ${time} (${minutes} minutes): book a session with ${row.full_name}`,
      "aria-haspopup": "dialog",
      dataset: { start: slot.start_time, end: slot.end_time },
    },
    h("span", { class: "block-time" }, time),
    h("span", { class: "block-meta" }, "Free"),
  );
  button.addEventListener("click", () => handlers.onSlot(row, slot, button));
  return button;
}

function cellMatrix(root) {
  return $$(".grid-row:not(.grid-head)", root).map((rowEl) =>
    $$('[role="rowheader"], [role="gridcell"]', rowEl),
  );
}

export function activeCellPosition(root) {
  const cells = cellMatrix(root);
  for (let r = 0; r < cells.length; r++) {
    for (let c = 0; c < cells[r].length; c++) {
      if (cells[r][c].tabIndex === 0) return { row: r, col: c };
    }
  }
  return null;
}

function setUpKeyboard(root) {
  if (root.dataset.keyboard) return;
  root.dataset.keyboard = "on";
  root.addEventListener("keydown", (event) => {
    const cells = cellMatrix(root);
    const cell = event.target.closest('[role="gridcell"], [role="rowheader"]');
    if (!cell) return;
    let r = -1;
    let c = -1;
    cells.forEach((rowCells, i) => {
      const j = rowCells.indexOf(cell);
      if (j >= 0) [r, c] = [i, j];
    });
    if (r < 0) return;
    const moveTo = (nr, nc) => {
      nr = Math.max(0, Math.min(cells.length - 1, nr));
      nc = Math.max(0, Math.min(cells[nr].length - 1, nc));
      for (const rowCells of cells) for (const el of rowCells) el.tabIndex = -1;
      cells[nr][nc].tabIndex = 0;
      cells[nr][nc].focus();
    };
    const blocks = $$(".block", cell);
    const onBlock = event.target !== cell;
    switch (event.key) {
      case "ArrowRight":
        moveTo(r, c + 1);
        break;
      case "ArrowLeft":
        moveTo(r, c - 1);
        break;
      case "ArrowDown":
        if (onBlock) {
          const i = blocks.indexOf(event.target);
          if (i < blocks.length - 1) blocks[i + 1].focus();
        } else moveTo(r + 1, c);
        break;
      case "ArrowUp":
        if (onBlock) {
          const i = blocks.indexOf(event.target);
          if (i > 0) blocks[i - 1].focus();
          else cell.focus();
        } else moveTo(r - 1, c);
        break;
      case "Home":
        moveTo(event.ctrlKey ? 0 : r, 0);
        break;
      case "End":
        moveTo(event.ctrlKey ? cells.length - 1 : r, cells[r].length - 1);
        break;
      case "PageDown":
        moveTo(r + 5, c);
        break;
      case "PageUp":
        moveTo(r - 5, c);
        break;
      case "Enter":
      case "F2":
        if (onBlock) return; // the button's own activation
        if (blocks.length) blocks[0].focus();
        break;
      case "Escape":
        if (!onBlock) return;
        cell.focus();
        break;
      default:
        return;
    }
    event.preventDefault();
  });
  root.addEventListener("focusin", (event) => {
    const cell = event.target.closest('[role="gridcell"], [role="rowheader"]');
    if (!cell || cell.tabIndex === 0) return;
    for (const el of root.querySelectorAll('[tabindex="0"]')) el.tabIndex = -1;
    cell.tabIndex = 0;
  });
}
