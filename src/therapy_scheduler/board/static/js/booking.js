// Booking from a free slot: hold (with a countdown to expires_at) → confirm, or release.

import { h, option, clear } from "./dom.js";
import { newIdempotencyKey } from "./api.js";
import { SeriesForecast } from "./forecast.js";
import {
  ceilQuarterHour,
  countdownLabel,
  dateTimeLabel,
  isoUtc,
  longDayLabel,
  minutesBetween,
  rangeLabel,
  dateIn,
  timeLabel,
} from "./time.js";

const DURATIONS = Array.from({ length: 32 }, (_, i) => (i + 1) * 15); // 15 … 480 minutes
const MAX_WEEKS = 52;

export class BookingDialog {
  /** ctx: { api, reference(), zone(), announce(text), showError(err), onBooked() } */
  constructor(dialog, ctx) {
    this.dialog = dialog;
    this.ctx = ctx;
    this.hold = null;
    this.timer = null;
    this.busy = false;
    dialog.addEventListener("close", () => this.onClose());
  }

  open(therapist, slot) {
    this.therapist = therapist;
    this.slot = slot;
    this.hold = null;
    this.confirmed = false;
    this.render();
    this.dialog.showModal();
    this.fields.client.focus();
  }

  render() {
    const zone = this.ctx.zone();
    const ref = this.ctx.reference();
    const slot = this.slot;
    const day = dateIn(slot.start_time, zone);
    const slotMinutes = minutesBetween(slot.start_time, slot.end_time);

    const client = h("select", { id: "b-client", name: "client", required: true });
    client.append(option("", "Choose a client…"));
    for (const c of ref.clients) {
      if (c.status !== "active") continue;
      client.append(option(c.id, c.full_name, c.id === ref.preferredClientId));
    }

    const start = h("select", { id: "b-start", name: "start" });
    const first = ceilQuarterHour(Math.max(Date.parse(slot.start_time), this.ctx.api.now()));
    for (let t = first; t + 15 * 60_000 <= Date.parse(slot.end_time); t += 15 * 60_000) {
      start.append(option(isoUtc(t), timeLabel(isoUtc(t), zone)));
    }

    const duration = h("select", { id: "b-duration", name: "duration" });
    const preferred = Math.min(60, Math.max(15, slotMinutes - (slotMinutes % 15)));
    for (const m of DURATIONS) duration.append(option(String(m), durationLabel(m), m === preferred));

    const service = h("select", { id: "b-service", name: "service" });
    service.append(option("", "Organization default"));
    for (const s of ref.serviceCodes) service.append(option(s.code, `${s.code} · ${s.label}`));

    const location = h("select", { id: "b-location", name: "location" });
    location.append(option("", "Not specified"));
    for (const loc of ref.locations) {
      if (loc.is_active === false) continue;
      location.append(option(`id:${loc.id}`, `${loc.name} (${ref.locationTypeLabels[loc.location_type] || loc.location_type})`));
    }
    for (const t of ref.locationTypes) location.append(option(`type:${t.value}`, `${t.label} (no specific place)`));

    const repeat = h("input", { type: "checkbox", id: "b-repeat", name: "repeat" });
    const count = h("input", {
      type: "number",
      id: "b-count",
      name: "count",
      min: 2,
      max: MAX_WEEKS,
      value: 4,
      disabled: true,
      inputmode: "numeric",
    });
    repeat.addEventListener("change", () => {
      count.disabled = !repeat.checked;
    });

    const notes = h("textarea", { id: "b-notes", name: "notes", rows: 2, maxlength: 2000 });
    this.fields = { client, start, duration, service, location, repeat, count, notes };

    // The series' forecast, asked again whenever the form changes (js/forecast.js).
    this.forecastBox = h("div", { id: "b-forecast", class: "forecast", "aria-live": "polite", hidden: true });
    this.forecast = new SeriesForecast(this.ctx.api, () => this.ctx.zone(), this.forecastBox);
    for (const el of [client, start, duration, service, location, repeat, count]) {
      el.addEventListener("change", () => this.updateForecast());
      el.addEventListener("input", () => this.updateForecast());
    }

    this.problem = h("div", { id: "b-problem", class: "problem", role: "alert", hidden: true });
    this.holdBox = h("div", { id: "b-hold", class: "hold-box", hidden: true });
    this.holdButton = h("button", { type: "submit", id: "b-hold-button", class: "primary" }, "Hold slot");
    this.confirmButton = h("button", { type: "button", id: "b-confirm", class: "primary", hidden: true }, "Confirm booking");
    this.releaseButton = h("button", { type: "button", id: "b-release", hidden: true }, "Release hold");
    const closeButton = h("button", { type: "button", id: "b-close" }, "Close");
    this.confirmButton.addEventListener("click", () => this.confirm());
    this.releaseButton.addEventListener("click", () => this.release());
    closeButton.addEventListener("click", () => this.dialog.close());

    const form = h(
      "form",
      { id: "booking-form", novalidate: true },
      h("h2", { id: "booking-title" }, "Book a session"),
      h(
        "p",
        { class: "context" },
        `${this.therapist.full_name} · ${longDayLabel(day)} · free ${rangeLabel(slot.start_time, slot.end_time, zone)} (${zone})`,
      ),
      h(
        "div",
        { class: "fields" },
        field("Client", client),
        field("Start", start),
        field("Duration", duration),
        field("Service", service),
        field("Location", location),
        h(
          "fieldset",
          { class: "repeat" },
          h("legend", {}, "Recurrence"),
          h("label", { class: "check" }, repeat, " Repeat weekly"),
          field("Number of weeks", count),
          this.forecastBox,
        ),
        field("Notes for the session (optional)", notes),
      ),
      this.problem,
      this.holdBox,
      h("div", { class: "actions" }, this.holdButton, this.confirmButton, this.releaseButton, closeButton),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.placeHold();
    });
    this.form = form;
    this.dialog.replaceChildren(form);
  }

  holdRequest(override) {
    const f = this.fields;
    const startTime = override ? override.start_time : f.start.value;
    const minutes = override ? minutesBetween(override.start_time, override.end_time) : Number(f.duration.value);
    const session = {
      therapist_id: this.therapist.id,
      client_id: f.client.value,
      start_time: startTime,
    };
    if (f.service.value) session.service_code = f.service.value;
    const [kind, value] = f.location.value.split(":");
    if (kind === "id") {
      const loc = this.ctx.reference().locations.find((l) => l.id === value);
      session.location_id = value;
      if (loc) session.location_type = loc.location_type;
    } else if (kind === "type") {
      session.location_type = value;
    }
    const body = { session, duration_minutes: minutes, time_zone: this.ctx.zone() };
    if (f.repeat.checked) {
      body.recurrence = { rrule: `FREQ=WEEKLY;COUNT=${Number(f.count.value)}` };
    }
    return body;
  }

  updateForecast() {
    if (this.hold || !this.fields.repeat.checked || this.validate()) {
      this.forecast.update(null);
      return;
    }
    this.forecast.update(this.holdRequest());
  }

  validate() {
    const f = this.fields;
    if (!f.client.value) return { field: f.client, message: "Choose a client." };
    if (!f.start.value) return { field: f.start, message: "This free slot has no start time left." };
    if (f.repeat.checked) {
      const n = Number(f.count.value);
      if (!Number.isInteger(n) || n < 2 || n > MAX_WEEKS) {
        return { field: f.count, message: `Number of weeks must be a whole number from 2 to ${MAX_WEEKS}.` };
      }
    }
    return null;
  }

  async placeHold(override) {
    if (this.busy) return;
    const invalid = this.validate();
    if (invalid) {
      this.showProblem(invalid.message);
      invalid.field.setAttribute("aria-invalid", "true");
      invalid.field.focus();
      return;
    }
    for (const el of Object.values(this.fields)) el.removeAttribute("aria-invalid");
    this.setBusy(true, "Holding…");
    const body = this.holdRequest(override);
    try {
      const result = await this.ctx.api.post("/sessions/hold", body, newIdempotencyKey());
      this.hold = { ...result, body, confirmKey: newIdempotencyKey() };
      if (!this.dialog.open) {
        // Closed (Escape, Close, sign-out) while the hold was on its way: nobody will confirm it, so
        // give the slot back now instead of leaving it blocked until the hold expires.
        await this.release(true);
        return;
      }
      this.showHold();
      this.ctx.announce(
        `Slot held until ${dateTimeLabel(result.expires_at, this.ctx.zone())}. Confirm to book it.`,
      );
    } catch (error) {
      this.ctx.announce("The slot could not be held.");
      this.showProblem(error.message, error);
    } finally {
      this.setBusy(false);
    }
  }

  showHold() {
    this.forecast.update(null);
    const zone = this.ctx.zone();
    const hold = this.hold;
    this.problem.hidden = true;
    for (const el of Object.values(this.fields)) if (el !== this.fields.notes) el.disabled = true;
    const occurrences = hold.occurrences || [];
    const countdown = h("span", { id: "b-countdown", role: "timer", "aria-live": "off" }, "");
    const warnings = (hold.warnings || []).map((w) =>
      h("li", {}, `${w.message || w.code}${w.occurrence_index != null && occurrences.length > 1 ? ` (session ${w.occurrence_index + 1} of the series)` : ""}`),
    );
    this.holdBox.replaceChildren(
      h("p", { class: "hold-title" }, occurrences.length > 1 ? `Held ${occurrences.length} sessions` : "Slot held"),
      h(
        "ol",
        { class: "occurrences", id: "b-occurrences" },
        occurrences.map((o) => h("li", {}, `${dateTimeLabel(o.start_time, zone)}–${timeLabel(o.end_time, zone)}`)),
      ),
      h("p", {}, "Time left to confirm: ", countdown),
      h("div", { class: "warnings", hidden: !warnings.length }, h("p", {}, "Warnings:"), h("ul", {}, warnings)),
    );
    this.holdBox.hidden = false;
    this.holdButton.hidden = true;
    this.confirmButton.hidden = false;
    this.releaseButton.hidden = false;
    this.confirmButton.disabled = false;
    this.countdown = countdown;
    this.tick();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.tick(), 250);
    this.confirmButton.focus();
  }

  tick() {
    if (!this.hold) return;
    const left = Date.parse(this.hold.expires_at) - this.ctx.api.now();
    this.countdown.textContent = countdownLabel(left);
    // The timer itself is not live (it would speak every second); warn once, a minute before.
    if (left <= 60_000 && left > 0 && !this.hold.warned) {
      this.hold.warned = true;
      this.ctx.announce("One minute left to confirm the held slot.");
    }
    if (left <= 0) this.expire();
  }

  expire() {
    clearInterval(this.timer);
    this.timer = null;
    this.hold = null;
    this.holdBox.hidden = true;
    this.confirmButton.hidden = true;
    this.releaseButton.hidden = true;
    this.holdButton.hidden = false;
    this.holdButton.textContent = "Hold again";
    for (const el of Object.values(this.fields)) el.disabled = false;
    this.fields.count.disabled = !this.fields.repeat.checked;
    this.showProblem("The hold expired before it was confirmed; the slot is free again.");
  }

  async confirm() {
    if (this.busy || !this.hold) return;
    const occurrences = this.hold.occurrences || [];
    const first = occurrences[0];
    const session = { start_time: first.start_time, end_time: first.end_time };
    const notes = this.fields.notes.value.trim();
    if (notes) session.notes = notes;
    const body = { hold_key: this.hold.hold_key, session };
    if (occurrences.length > 1) body.occurrences = occurrences.map((o) => ({ start_time: o.start_time, end_time: o.end_time }));
    this.setBusy(true, "Confirming…");
    try {
      const result = await this.ctx.api.post("/sessions/confirm", body, this.hold.confirmKey);
      const booked = result.occurrences || [result.session];
      this.confirmed = true;
      clearInterval(this.timer);
      this.hold = null;
      const zone = this.ctx.zone();
      const clientName = this.fields.client.selectedOptions[0]?.textContent || "the client";
      const text =
        `Booked ${booked.length === 1 ? "1 session" : `${booked.length} sessions`} for ${clientName} with ${this.therapist.full_name}, ` +
        `first on ${dateTimeLabel(booked[0].start_time, zone)}.`;
      this.ctx.announce(text);
      this.dialog.close();
      this.ctx.onBooked(text);
    } catch (error) {
      this.ctx.announce("The booking was not confirmed.");
      if (error.code === "HOLD_EXPIRED") this.expire();
      this.showProblem(error.message, error);
    } finally {
      this.setBusy(false);
    }
  }

  async release(quiet = false) {
    const hold = this.hold;
    if (!hold) return;
    clearInterval(this.timer);
    this.hold = null;
    try {
      await this.ctx.api.delete(`/sessions/hold/${encodeURIComponent(hold.hold_key)}`);
      this.ctx.announce("Hold released; the slot is free again.");
    } catch (error) {
      if (!quiet) this.showProblem(error.message, error);
    }
    if (!quiet && this.dialog.open) {
      this.holdBox.hidden = true;
      this.confirmButton.hidden = true;
      this.releaseButton.hidden = true;
      this.holdButton.hidden = false;
      for (const el of Object.values(this.fields)) el.disabled = false;
      this.fields.count.disabled = !this.fields.repeat.checked;
      this.holdButton.focus();
    }
  }

  /** Sign-out: give back an open hold now, without touching the dialog. */
  abandon() {
    if (this.hold && !this.confirmed) this.release(true);
  }

  onClose() {
    this.forecast?.update(null);
    clearInterval(this.timer);
    this.timer = null;
    if (this.hold && !this.confirmed) this.release(true);
    this.ctx.onClosed?.();
  }

  setBusy(busy, text) {
    this.busy = busy;
    this.form?.setAttribute("aria-busy", String(busy));
    for (const b of [this.holdButton, this.confirmButton, this.releaseButton]) b.disabled = busy;
    if (busy && text) this.ctx.announce(text);
  }

  showProblem(message, error) {
    clear(this.problem);
    this.problem.append(h("p", { class: "problem-message" }, message));
    if (error && error.code) {
      // The API counts occurrences from 0; people count the sessions of a series from 1.
      const series = this.fields.repeat.checked;
      const where = series && error.details && error.details.occurrence_index != null
        ? ` · session ${Number(error.details.occurrence_index) + 1} of the series`
        : "";
      this.problem.append(h("p", { class: "problem-code" }, `${error.code}${where}${error.requestId ? ` · request ${error.requestId}` : ""}`));
    }
    const alternatives = (error && Array.isArray(error.details && error.details.alternatives) && error.details.alternatives) || [];
    const zone = this.ctx.zone();
    if (alternatives.length) {
      this.problem.append(
        h("p", { id: "b-alternatives-label" }, "Free alternatives for this therapist and client:"),
        h(
          "ul",
          { class: "alternatives", "aria-labelledby": "b-alternatives-label" },
          alternatives
            .filter((a) => a && a.start_time && a.end_time)
            .map((a) =>
              h(
                "li",
                {},
                h(
                  "button",
                  {
                    type: "button",
                    class: "alternative",
                    dataset: { start: a.start_time, end: a.end_time },
                    onclick: () => this.placeHold({ start_time: a.start_time, end_time: a.end_time }),
                  },
                  `${dateTimeLabel(a.start_time, zone)}–${timeLabel(a.end_time, zone)}`,
                ),
              ),
            ),
        ),
      );
    }
    this.problem.hidden = false;
  }
}

function field(label, control) {
  return h("label", { class: "field", for: control.id }, h("span", {}, label), control);
}

function durationLabel(minutes) {
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  if (!hours) return `${rest} min`;
  return rest ? `${hours} h ${rest} min` : `${hours} h`;
}

