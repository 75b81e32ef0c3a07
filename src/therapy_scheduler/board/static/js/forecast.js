// The forecast of a weekly series (docs/BOARD.md): while "Repeat weekly" is ticked, the dialog asks
// POST /sessions/hold with "dry_run": true as the form changes and lists every occurrence with its
// reasons, so the scheduler sees before pressing Hold which weeks cannot be booked and why. A dry run
// holds and writes nothing; no Idempotency-Key is sent.

import { h } from "./dom.js";
import { dateTimeLabel, timeLabel } from "./time.js";

const WAIT_MS = 300; // after the last change, so that typing a number of weeks sends one request

export class SeriesForecast {
  /** api: the Api; zone(): the board's zone; box: the element the forecast is shown in. */
  constructor(api, zone, box) {
    this.api = api;
    this.zone = zone;
    this.box = box;
    this.timer = null;
    this.sequence = 0; // answers to older requests are dropped
  }

  /** body: the hold request as the form stands, or null when there is no series to forecast. */
  update(body) {
    clearTimeout(this.timer);
    const ask = ++this.sequence;
    if (!body) {
      this.box.hidden = true;
      this.box.replaceChildren();
      return;
    }
    this.timer = setTimeout(() => this.run(ask, body), WAIT_MS);
  }

  async run(ask, body) {
    this.box.hidden = false;
    this.box.setAttribute("aria-busy", "true");
    let result;
    try {
      result = await this.api.post("/sessions/hold", { ...body, dry_run: true });
    } catch (error) {
      if (ask !== this.sequence) return;
      this.box.removeAttribute("aria-busy");
      this.box.replaceChildren(h("p", { class: "forecast-title" }, `Forecast unavailable: ${error.message}`));
      return;
    }
    if (ask !== this.sequence) return;
    this.box.removeAttribute("aria-busy");
    this.render(result);
  }

  render(result) {
    const zone = this.zone();
    const rows = result.occurrences || [];
    const title = result.bookable
      ? `All ${rows.length} sessions can be held`
      : `${result.bookable_count} of ${rows.length} sessions can be held`;
    const last = result.last_covered_occurrence;
    this.box.replaceChildren(
      h("p", { class: "forecast-title" }, title),
      h("ul", { class: "forecast-summary" }, (result.summary || []).map((line) => h("li", {}, line))),
      last ? h("p", { class: "forecast-last" }, `The authorization covers up to session ${last.number} (${dateTimeLabel(last.start_time, zone)}).`) : null,
      h(
        "ol",
        { class: "forecast-occurrences", id: "b-forecast-occurrences" },
        rows.map((o) =>
          h(
            "li",
            { class: o.bookable ? "ok" : "blocked", dataset: { number: o.number, bookable: String(o.bookable) } },
            `${dateTimeLabel(o.start_time, zone)}–${timeLabel(o.end_time, zone)}: `,
            o.bookable ? "can be held" : "cannot be held",
            o.units_remaining != null ? ` · ${o.units_remaining} units left after it` : "",
            o.reasons.length
              ? h("ul", { class: "forecast-reasons" }, o.reasons.map((r) => h("li", { class: r.blocking ? "blocking" : "warning" }, r.message)))
              : null,
          ),
        ),
      ),
    );
  }
}
