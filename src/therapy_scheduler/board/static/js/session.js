// A session's details, and cancelling it (reason, policy, scope) with the late-cancellation result.

import { h, option, clear } from "./dom.js";
import { newIdempotencyKey } from "./api.js";
import { dateTimeLabel, timeLabel } from "./time.js";
import { CONFLICT_LABELS, statusLabel } from "./grid.js";

const CANCELLABLE = new Set(["scheduled", "in_progress"]);

export class SessionDialog {
  /** ctx: { api, reference(), zone(), canCancel(session), announce(text), onChanged() } */
  constructor(dialog, ctx) {
    this.dialog = dialog;
    this.ctx = ctx;
    this.busy = false;
  }

  open(session, conflicts, supervision = null) {
    this.session = session;
    this.render(session, conflicts || [], supervision);
    this.dialog.showModal();
    (this.reasonSelect || this.closeButton).focus();
  }

  render(session, conflicts, supervision = null) {
    const zone = this.ctx.zone();
    const ref = this.ctx.reference();
    const location = session.location_id
      ? ref.locations.find((l) => l.id === session.location_id)
      : null;
    const place = [
      location ? location.name : null,
      ref.locationTypeLabels[session.location_type] || session.location_type,
    ]
      .filter(Boolean)
      .join(" · ");
    const service = ref.serviceCodes.find((s) => s.code === session.service_code);
    const rows = [
      ["When", `${dateTimeLabel(session.start_time, zone)}–${timeLabel(session.end_time, zone)} (${zone})`],
      ["Therapist", session.therapist?.full_name],
      ["Client", session.client?.full_name],
      ["Service", service ? `${service.code} · ${service.label}` : session.service_code],
      ["Location", place],
      ["Status", statusLabel(session.status, ref.statusLabels)],
      ["Series", session.series_id ? "Part of a recurring series" : null],
      ["Supervision", supervision],
    ];
    // Present only when the API sends it (admins and schedulers); a therapist never gets the key.
    if (session.authorization) {
      const a = session.authorization;
      rows.push([
        "Authorization",
        `${a.units_remaining} units left (${a.sessions_remaining} sessions like this), ends ${a.end_date}`,
      ]);
    }
    const details = h(
      "dl",
      { class: "details" },
      rows.filter(([, v]) => v).map(([k, v]) => [h("dt", {}, k), h("dd", { dataset: { field: k } }, v)]),
    );
    const conflictList = conflicts.length
      ? h(
          "div",
          { class: "conflicts", id: "s-conflicts" },
          h("h3", {}, "Conflicts"),
          h(
            "ul",
            {},
            conflicts.map((c) =>
              h(
                "li",
                {},
                h("strong", {}, CONFLICT_LABELS[c.type] || c.type),
                `: ${c.description}`,
                c.suggested_resolution ? h("span", { class: "resolution" }, ` ${c.suggested_resolution}`) : null,
              ),
            ),
          ),
        )
      : null;

    this.result = h("div", { id: "s-result", class: "result", role: "status", hidden: true });
    this.problem = h("div", { id: "s-problem", class: "problem", role: "alert", hidden: true });
    this.closeButton = h("button", { type: "button", id: "s-close" }, "Close");
    this.closeButton.addEventListener("click", () => this.dialog.close());
    this.reasonSelect = null;

    const canCancel = CANCELLABLE.has(session.status) && this.ctx.canCancel(session);
    let cancelForm = null;
    if (canCancel) {
      const reason = h("select", { id: "s-reason", name: "reason", required: true });
      reason.append(option("", "Choose a reason…"));
      for (const r of ref.cancellationReasons) reason.append(option(r.code, r.label));
      const policy = h("select", { id: "s-policy", name: "policy" });
      policy.append(option("", "Organization default policy"));
      for (const p of ref.cancellationPolicies) policy.append(option(p.name, p.label || p.name));
      const notes = h("textarea", { id: "s-notes", name: "notes", rows: 2, maxlength: 2000 });
      const scope = session.series_id
        ? h(
            "fieldset",
            { class: "scope" },
            h("legend", {}, "Which sessions"),
            ...[
              ["occurrence", "Only this session"],
              ["following", "This and the following sessions of the series"],
              ["series", "The whole series"],
            ].map(([value, label], i) =>
              h("label", { class: "check" }, h("input", { type: "radio", name: "scope", value, checked: i === 0 }), ` ${label}`),
            ),
          )
        : null;
      this.reasonSelect = reason;
      this.cancelFields = { reason, policy, notes };
      this.cancelButton = h("button", { type: "submit", id: "s-cancel", class: "danger" }, "Cancel session");
      cancelForm = h(
        "form",
        { id: "cancel-form", novalidate: true },
        h("h3", {}, "Cancel this session"),
        field("Reason", reason),
        field("Cancellation policy", policy),
        scope,
        field("Cancellation notes (optional, kept apart from clinical notes)", notes),
        h("div", { class: "actions" }, this.cancelButton),
      );
      cancelForm.addEventListener("submit", (event) => {
        event.preventDefault();
        this.cancel(cancelForm);
      });
      this.cancelForm = cancelForm;
    }

    const parts = [
      h("h2", { id: "session-title" }, "Session"),
      details,
      conflictList,
      cancelForm,
      this.problem,
      this.result,
      h("div", { class: "actions" }, this.closeButton),
    ];
    this.dialog.replaceChildren(...parts.filter(Boolean));
  }

  async cancel(form) {
    if (this.busy) return;
    const { reason, policy, notes } = this.cancelFields;
    if (!reason.value) {
      reason.setAttribute("aria-invalid", "true");
      this.showProblem("Choose a cancellation reason.");
      reason.focus();
      return;
    }
    reason.removeAttribute("aria-invalid");
    const body = { session_id: this.session.id, reason: reason.value };
    if (policy.value) body.cancellation_policy = policy.value;
    if (notes.value.trim()) body.notes = notes.value.trim();
    const scope = form.querySelector('input[name="scope"]:checked');
    if (scope && scope.value !== "occurrence") body.scope = scope.value;
    this.busy = true;
    this.cancelButton.disabled = true;
    this.problem.hidden = true;
    try {
      const result = await this.ctx.api.post("/sessions/cancel", body, newIdempotencyKey());
      const ids = result.cancelled_session_ids || [result.session_id];
      let text;
      if (result.already_cancelled) text = "This session was already cancelled; nothing changed.";
      else {
        text =
          `${ids.length === 1 ? "Session cancelled" : `${ids.length} sessions cancelled`}` +
          (result.late_cancellation
            ? " — late cancellation (less notice than the policy requires)."
            : " with enough notice (not a late cancellation).");
      }
      form.remove();
      const status = this.dialog.querySelector('dd[data-field="Status"]');
      if (status && !result.already_cancelled) status.textContent = statusLabel("cancelled", this.ctx.reference().statusLabels);
      clear(this.result);
      this.result.append(h("p", {}, text));
      // E.g. a supervision left standing alone by this cancellation (docs/BOOKING.md).
      for (const w of result.warnings || []) {
        this.result.append(h("p", { class: "warning", dataset: { code: w.code } }, w.message));
      }
      this.result.hidden = false;
      this.result.dataset.late = String(Boolean(result.late_cancellation));
      this.ctx.announce(text);
      this.closeButton.focus();
      this.ctx.onChanged(text);
    } catch (error) {
      this.showProblem(error.message, error);
      this.cancelButton.disabled = false;
    } finally {
      this.busy = false;
    }
  }

  showProblem(message, error) {
    clear(this.problem);
    this.problem.append(h("p", {}, message));
    if (error && error.code) {
      this.problem.append(h("p", { class: "problem-code" }, `${error.code}${error.requestId ? ` · request ${error.requestId}` : ""}`));
    }
    this.problem.hidden = false;
  }
}

function field(label, control) {
  return h("label", { class: "field", for: control.id }, h("span", {}, label), control);
}
