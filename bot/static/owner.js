/* The owner dashboard (/owner): reports, sentiment log, staff, canned replies, handoff
 * settings and privacy. Vanilla JS against the JSON API; every piece of data is rendered
 * with textContent (never innerHTML), so a customer's "<img onerror=...>" stays text.
 */
(function () {
  "use strict";

  const Charts = window.TandemCharts;
  const $ = (id) => document.getElementById(id);
  const SECTIONS = ["reports", "log", "tickets", "staff", "canned", "settings", "privacy"];
  const TRIGGERS = [
    "frustration", "negative_streak", "human_request", "fallbacks", "repeated_intent",
    "complaint", "large_cancellation", "legal", "high_value", "purchase_intent",
  ];
  const OUTCOME_LABELS = { bot: "Bot resolved", handed_off: "Handed off", ticket: "Ticket", open: "Open" };
  const OUTCOME_COLORS = { bot: "#10b981", handed_off: "#4f46e5", ticket: "#f59e0b" };

  const state = {
    csrf: "",
    me: null,
    section: "reports",
    loaded: {},
    log: { page: 1, pageSize: 50, total: 0, selected: null },
    staff: [],
    editingCanned: null,
    policy: null,
    businessToday: null,
    report: null,
    tickets: null, // the ticket inbox (tickets.js), mounted when first shown
  };

  /* ---------- small helpers ---------- */

  // The shared builder from common.js when it is there; the same shape otherwise.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "className") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on") && typeof value === "function") {
        node.addEventListener(key.slice(2), value);
      } else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
      this.detail = detail;
    }
  }

  function detailText(body, status) {
    if (!body) return `Request failed (${status}).`;
    const detail = body.detail;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      // FastAPI validation errors: "field: message".
      return detail
        .map((d) => {
          const where = Array.isArray(d.loc) ? d.loc.filter((p) => p !== "body").join(".") : "";
          return where ? `${where}: ${d.msg}` : String(d.msg || d);
        })
        .join("; ");
    }
    if (detail && typeof detail === "object") return JSON.stringify(detail);
    return `Request failed (${status}).`;
  }

  // Tandem.api (common.js) does the fetch, JSON and CSRF header; here the dashboard adds
  // what a 401 or an owner-only 403 means for the page.
  async function api(method, path, body) {
    const T = window.Tandem;
    try {
      if (T && T.api) return await T.api(path, { method, body });
      return await fallbackApi(method, path, body);
    } catch (raw) {
      const error = raw && raw.status !== undefined
        ? new ApiError(raw.status, raw.detail)
        : new ApiError(0, "The server cannot be reached. Check the connection and try again.");
      if (error.status === 401) showLogin("Your session ended. Please log in again.");
      else if (error.status === 403 && /owner/i.test(error.detail)) showNotOwner();
      throw error;
    }
  }

  async function fallbackApi(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
    const response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, detailText(data, response.status));
    return data;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function setError(node, message) {
    node.textContent = message || "";
    show(node, Boolean(message));
  }

  let toastTimer = 0;
  function toast(message) {
    const node = $("toast");
    node.textContent = message;
    show(node, true);
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => show(node, false), 4000);
  }

  function when(value) {
    if (!value) return "—";
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) return String(value);
    return date.toLocaleString(undefined, {
      year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    });
  }

  // Short, for table cells: "Nov 25, 16:55".
  function shortWhen(value) {
    const date = new Date(value);
    if (!value || Number.isNaN(date.getTime())) return "—";
    return date.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  }

  function num(value, digits) {
    if (value === null || value === undefined || Number.isNaN(Number(value))) return "—";
    return Number(value).toFixed(digits);
  }

  function pct(fraction) {
    return Charts.percent(fraction);
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    const s = Math.round(Number(seconds));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60 ? `${s % 60} s` : ""}`.trim();
    return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  }

  function scoreClass(score) {
    if (score === null || score === undefined) return "chip chip-none";
    if (score <= -0.25) return "chip chip-neg";
    if (score >= 0.25) return "chip chip-pos";
    return "chip chip-neu";
  }

  function scoreChip(score, prefix) {
    const text = score === null || score === undefined ? "no score" : num(score, 2);
    return el("span", { className: scoreClass(score), title: "Sentiment score, −1 to 1" },
      (prefix || "") + text);
  }

  function downloadName(response, fallback) {
    const header = response.headers.get("content-disposition") || "";
    const match = /filename="?([^";]+)"?/i.exec(header);
    return match ? match[1] : fallback;
  }

  /* ---------- dialogs ---------- */

  // One reusable <dialog>: resolves with the typed value (or true), or null when cancelled.
  function ask({ title, body, confirm, danger, input, mustEqual, type, minLength }) {
    const dialog = $("dialog");
    const field = $("dialog-input");
    $("dialog-title").textContent = title;
    $("dialog-body").textContent = body || "";
    $("dialog-confirm").textContent = confirm || "OK";
    $("dialog-confirm").className = danger ? "btn btn-danger" : "btn btn-primary";
    setError($("dialog-error"), "");
    show($("dialog-field"), Boolean(input));
    field.value = "";
    field.type = type || "text";
    $("dialog-label").textContent = input || "";
    return new Promise((resolve) => {
      const finish = (value) => {
        $("dialog-form").removeEventListener("submit", onSubmit);
        $("dialog-cancel").removeEventListener("click", onCancel);
        dialog.removeEventListener("cancel", onCancel);
        if (dialog.open) dialog.close();
        resolve(value);
      };
      const onSubmit = (event) => {
        event.preventDefault();
        if (input) {
          const value = field.value.trim();
          if (!value) return setError($("dialog-error"), "This field is required.");
          if (minLength && value.length < minLength) {
            return setError($("dialog-error"), `At least ${minLength} characters, please.`);
          }
          if (mustEqual !== undefined && value.toLowerCase() !== mustEqual.toLowerCase()) {
            return setError($("dialog-error"), "That does not match. Nothing was deleted.");
          }
          return finish(value);
        }
        return finish(true);
      };
      const onCancel = (event) => {
        event.preventDefault();
        finish(null);
      };
      $("dialog-form").addEventListener("submit", onSubmit);
      $("dialog-cancel").addEventListener("click", onCancel);
      dialog.addEventListener("cancel", onCancel);
      dialog.showModal();
      (input ? field : $("dialog-cancel")).focus();
    });
  }

  /* ---------- session ---------- */

  function showView(name) {
    show($("login-view"), name === "login");
    show($("not-owner-view"), name === "not-owner");
    show($("app-view"), name === "app");
  }

  function showLogin(message) {
    showView("login");
    setError($("login-error"), message || "");
    $("login-email").focus();
  }

  function showNotOwner() {
    if (state.me) $("not-owner-name").textContent = `${state.me.display_name} (${state.me.email})`;
    showView("not-owner");
  }

  async function boot() {
    let me;
    try {
      const response = await fetch("/api/staff/me", { credentials: "same-origin" });
      if (response.status === 401) return showLogin("");
      if (!response.ok) throw new Error(`status ${response.status}`);
      me = await response.json();
    } catch (error) {
      return showLogin("The server cannot be reached right now. Try again in a moment.");
    }
    startSession(me);
  }

  function startSession(me) {
    state.me = me.user;
    state.csrf = me.csrf_token;
    if (window.Tandem && window.Tandem.setCsrf) window.Tandem.setCsrf(me.csrf_token);
    state.loaded = {};
    if (me.user.role !== "owner") return showNotOwner();
    $("me-name").textContent = me.user.display_name;
    showView("app");
    route();
  }

  async function login(event) {
    event.preventDefault();
    const email = $("login-email").value.trim();
    const password = $("login-password").value;
    if (!email || !password) return setError($("login-error"), "Enter your e-mail and password.");
    const button = event.submitter || document.querySelector("[data-testid=login-submit]");
    button.disabled = true;
    try {
      const response = await fetch("/api/staff/login", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ email, password }),
      });
      const data = await response.json().catch(() => null);
      if (!response.ok) return setError($("login-error"), detailText(data, response.status));
      setError($("login-error"), "");
      $("login-password").value = "";
      startSession(data);
    } catch (error) {
      setError($("login-error"), "The server cannot be reached. Try again in a moment.");
    } finally {
      button.disabled = false;
    }
  }

  async function logout() {
    try {
      await fetch("/api/staff/logout", {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": state.csrf },
      });
    } finally {
      state.me = null;
      state.csrf = "";
      state.tickets = null; // the next login may be someone else
      $("tickets-inbox").replaceChildren();
      showLogin("");
    }
  }

  /* ---------- navigation ---------- */

  function route() {
    const wanted = (location.hash || "#reports").slice(1);
    const section = SECTIONS.includes(wanted) ? wanted : "reports";
    state.section = section;
    for (const name of SECTIONS) show($(`section-${name}`), name === section);
    for (const link of document.querySelectorAll(".sidenav a")) {
      if (link.dataset.section === section) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    // Reload on every visit: the numbers move while the owner looks at other sections.
    LOADERS[section]();
  }

  /* ---------- reports ---------- */

  function setKpi(testid, value, text) {
    const node = document.querySelector(`[data-testid="${testid}"]`);
    node.dataset.value = value === null || value === undefined ? "" : String(value);
    node.textContent = text;
  }

  async function loadReports() {
    const from = $("report-from").value;
    const to = $("report-to").value;
    if (from && to && from > to) {
      return setError($("report-error"), "The start date must be on or before the end date.");
    }
    setError($("report-error"), "");
    // No dates yet: the server picks the last 30 days in the business's timezone.
    const query = from && to ? `?${new URLSearchParams({ from, to })}` : "";
    let report;
    try {
      report = await api("GET", `/api/owner/reports${query}`);
    } catch (error) {
      return setError($("report-error"), error.detail || String(error));
    }
    if (report.period) {
      if (!query) {
        state.businessToday = report.period.to;
        for (const button of document.querySelectorAll(".presets button")) {
          button.setAttribute("aria-pressed", String(button.dataset.days === "30"));
        }
      }
      $("report-from").value = report.period.from;
      $("report-to").value = report.period.to;
    }
    renderReports(report);
  }

  function renderReports(report) {
    state.report = report;
    const outcomes = report.outcomes || {};
    const share = (key) => (outcomes[key] ? outcomes[key].share : null);
    const count = (key) => (outcomes[key] ? outcomes[key].count : 0);
    const wait = report.wait_to_first_reply || {};
    const csat = report.csat || {};
    setKpi("kpi-conversations", outcomes.total ?? 0, String(outcomes.total ?? 0));
    setKpi("kpi-bot-share", share("bot"), pct(share("bot")));
    setKpi("kpi-handed-off-share", share("handed_off"), pct(share("handed_off")));
    setKpi("kpi-ticket-share", share("ticket"), pct(share("ticket")));
    setKpi("kpi-wait-p50", wait.p50, duration(wait.p50));
    setKpi("kpi-wait-p90", wait.p90, duration(wait.p90));
    setKpi("kpi-csat", csat.average, csat.average === null || csat.average === undefined
      ? "—" : `${num(csat.average, 1)} / 5`);
    setKpi("kpi-fallback-rate", report.fallback_rate, pct(report.fallback_rate));
    const tickets = report.tickets || {};
    const resolution = tickets.time_to_resolution || {};
    setKpi("kpi-tickets-filed", tickets.count ?? 0, String(tickets.count ?? 0));
    setKpi("kpi-tickets-done", tickets.done ?? 0, String(tickets.done ?? 0));
    setKpi("kpi-resolution-p50", resolution.p50, duration(resolution.p50));
    setKpi("kpi-resolution-p90", resolution.p90, duration(resolution.p90));

    const chart = (id) => document.querySelector(`[data-testid="${id}"]`);
    const days = report.sentiment_per_day || [];
    const scored = days.filter((d) => d.average !== null && d.average !== undefined);
    const overall = scored.length
      ? scored.reduce((s, d) => s + d.average * (d.messages || 1), 0) /
        scored.reduce((s, d) => s + (d.messages || 1), 0)
      : null;
    Charts.line(chart("chart-sentiment"), {
      title: "Average sentiment per day",
      summary: scored.length
        ? `Average customer sentiment per day, from ${days[0].day} to ${days[days.length - 1].day}` +
          ` on a scale of −1 to 1; overall ${num(overall, 2)} over ${scored.length} days with messages.`
        : "Average customer sentiment per day: no customer messages in this period.",
      points: days.map((d) => ({ label: d.day, value: d.average, extra: d.messages })),
      min: -1, max: 1, valueLabel: "Average sentiment", extraLabel: "Messages",
    });

    const parts = ["bot", "handed_off", "ticket"].map((key) => ({
      label: OUTCOME_LABELS[key], value: count(key), share: share(key) ?? 0, color: OUTCOME_COLORS[key],
    }));
    Charts.stacked(chart("chart-outcomes"), {
      title: "Outcomes",
      summary: `Outcomes of ${outcomes.total ?? 0} conversations: ` +
        parts.map((p) => `${p.label} ${pct(p.share)}`).join(", ") + ".",
      parts,
    });

    const reasons = report.escalations_by_reason || [];
    Charts.hbars(chart("chart-reasons"), {
      title: "Escalations by reason",
      summary: reasons.length
        ? "Escalations by reason: " + reasons.map((r) => `${r.label || r.reason} ${r.count}`).join(", ") + "."
        : "Escalations by reason: none in this period.",
      bars: reasons.map((r) => ({ label: r.label || r.reason, value: r.count, color: "#ef4444" })),
      labelHeader: "Reason", valueHeader: "Escalations",
      emptyText: "No escalations in this period",
    });

    Charts.hbars(chart("chart-wait"), {
      title: "Wait to first staff reply",
      summary: wait.count
        ? `Wait from handoff to the first staff reply over ${wait.count} handoffs: median ${duration(wait.p50)}, 90th percentile ${duration(wait.p90)}.`
        : "Wait to first staff reply: no handoffs answered in this period.",
      bars: wait.count ? [
        { label: "p50 (median)", value: wait.p50, color: "#0ea5e9" },
        { label: "p90", value: wait.p90, color: "#4f46e5" },
      ] : [],
      format: duration, labelHeader: "Percentile", valueHeader: "Wait",
      emptyText: "No answered handoffs in this period",
    });

    Charts.hbars(chart("chart-resolution"), {
      title: "Ticket time to resolution",
      summary: resolution.count
        ? `Time from filing to done over ${resolution.count} of ${tickets.count} tickets filed in the period: median ${duration(resolution.p50)}, 90th percentile ${duration(resolution.p90)}.`
        : `Ticket time to resolution: none of the ${tickets.count ?? 0} tickets filed in this period is done.`,
      bars: resolution.count ? [
        { label: "p50 (median)", value: resolution.p50, color: "#f59e0b" },
        { label: "p90", value: resolution.p90, color: "#b45309" },
      ] : [],
      format: duration, labelHeader: "Percentile", valueHeader: "Time",
      emptyText: "No tickets done in this period",
    });

    const dist = csat.distribution || {};
    const csatBars = [1, 2, 3, 4, 5].map((s) => ({
      label: `${s}★`, value: dist[String(s)] || 0, color: s <= 2 ? "#ef4444" : s === 3 ? "#f59e0b" : "#10b981",
    }));
    Charts.columns(chart("chart-csat"), {
      title: "Customer satisfaction (CSAT)",
      summary: csat.count
        ? `CSAT from ${csat.count} ratings, average ${num(csat.average, 1)} of 5: ` +
          csatBars.map((b) => `${b.label.replace("★", " stars")} ${b.value}`).join(", ") + "."
        : "Customer satisfaction: no ratings in this period.",
      bars: csatBars, labelHeader: "Rating", valueHeader: "Ratings",
      emptyText: "No ratings in this period",
    });

    const intents = report.top_intents || [];
    Charts.hbars(chart("chart-intents"), {
      title: "Top intents",
      summary: intents.length
        ? "Most common customer intents: " + intents.map((i) => `${i.intent} ${i.count}`).join(", ") + "."
        : "Top intents: no messages in this period.",
      bars: intents.map((i) => ({ label: i.intent, value: i.count, color: "#8b5cf6" })),
      labelHeader: "Intent", valueHeader: "Messages",
    });

    const hours = new Array(24).fill(0);
    for (const h of report.busiest_hours || []) hours[h.hour] = h.messages;
    const peak = hours.indexOf(Math.max(...hours));
    Charts.columns(chart("chart-hours"), {
      title: "Busiest hours",
      summary: hours.some((v) => v)
        ? `Customer messages per hour of the day; the busiest hour is ${peak}:00 with ${hours[peak]} messages.`
        : "Busiest hours: no messages in this period.",
      bars: hours.map((value, hour) => ({ label: String(hour).padStart(2, "0"), value })),
      every: 3, labelHeader: "Hour", valueHeader: "Messages",
    });

    // Reasons seen in reports help the log's reason filter.
    addReasonOptions(reasons.map((r) => ({ value: r.reason, label: r.label || r.reason })));
  }

  function setPeriod(days) {
    // Count back from the business's today (from the server), not the browser's.
    const today = state.businessToday ? new Date(`${state.businessToday}T12:00:00Z`) : new Date();
    const first = new Date(today.getTime() - (days - 1) * 86400000);
    $("report-from").value = first.toISOString().slice(0, 10);
    $("report-to").value = today.toISOString().slice(0, 10);
    for (const button of document.querySelectorAll(".presets button")) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.days) === days));
    }
    loadReports();
  }

  /* ---------- sentiment log ---------- */

  function addReasonOptions(reasons) {
    const select = $("filter-reason");
    const known = new Set([...select.options].map((o) => o.value));
    for (const reason of reasons) {
      if (!reason.value || known.has(reason.value)) continue;
      known.add(reason.value);
      select.append(el("option", { value: reason.value, text: reason.label }));
    }
  }

  function logFilters() {
    const params = new URLSearchParams();
    const pairs = {
      from: "filter-from", to: "filter-to", outcome: "filter-outcome", sentiment: "filter-sentiment",
      reason: "filter-reason", staff_id: "filter-staff", tier: "filter-tier", q: "filter-search",
    };
    for (const [key, id] of Object.entries(pairs)) {
      const value = $(id).value.trim();
      if (value) params.set(key, value);
    }
    return params;
  }

  function updateExports() {
    const filters = logFilters().toString();
    const suffix = filters ? `?${filters}` : "";
    $("export-conversations").href = `/api/owner/export/conversations.csv${suffix}`;
    $("export-messages").href = `/api/owner/export/messages.csv${suffix}`;
  }

  async function loadLogMeta() {
    addReasonOptions(TRIGGERS.map((t) => ({ value: t, label: t.replace(/_/g, " ") })));
    try {
      const data = await api("GET", "/api/owner/staff");
      state.staff = data.staff || [];
      const select = $("filter-staff");
      const current = select.value;
      select.replaceChildren(el("option", { value: "", text: "Anyone" }));
      for (const member of state.staff) {
        select.append(el("option", { value: member.id, text: member.display_name }));
      }
      select.value = current;
    } catch (error) {
      /* the filter simply stays "Anyone" */
    }
  }

  async function loadLog() {
    const params = logFilters();
    const from = params.get("from");
    const to = params.get("to");
    if (from && to && from > to) {
      return setError($("log-error"), "The start date must be on or before the end date.");
    }
    setError($("log-error"), "");
    params.set("page", String(state.log.page));
    params.set("page_size", String(state.log.pageSize));
    updateExports();
    let data;
    $("log-rows").setAttribute("aria-busy", "true");
    try {
      data = await api("GET", `/api/owner/log?${params}`);
    } catch (error) {
      // Never leave the previous results under an error: they would look like the answer.
      $("log-rows").replaceChildren();
      $("log-summary").textContent = "";
      return setError($("log-error"), error.detail || String(error));
    } finally {
      $("log-rows").setAttribute("aria-busy", "false");
    }
    state.log.total = data.total;
    renderLog(data);
  }

  function renderLog(data) {
    const body = $("log-rows");
    body.replaceChildren();
    const rows = data.conversations || [];
    if (!rows.length) {
      body.append(el("tr", {}, el("td", { colspan: 7, className: "empty" },
        "No conversations match these filters.")));
    }
    for (const c of rows) {
      const reasons = (c.reason_texts && c.reason_texts.length ? c.reason_texts : c.reasons) || [];
      const row = el("tr", {
        className: "clickable", tabindex: 0, "data-testid": "log-row",
        "data-conversation-id": c.id, "aria-label": `Open conversation from ${when(c.created_at)}`,
      },
      el("td", { className: "nowrap", title: when(c.created_at) }, shortWhen(c.created_at)),
      el("td", {}, el("div", {}, c.customer ? c.customer.label : "Anonymous"),
        c.customer && c.customer.tier ? el("span", { className: `tier tier-${c.customer.tier}` }, c.customer.tier) : null),
      el("td", {}, el("span", { className: `badge outcome-${c.outcome}` }, OUTCOME_LABELS[c.outcome] || c.outcome),
        c.staff ? el("div", { className: "muted small" }, c.staff.name) : null),
      el("td", { className: "reasons c-opt" }, reasons.length
        ? reasons.map((r) => el("span", { className: "reason" }, r)) : el("span", { className: "muted" }, "—")),
      el("td", {}, scoreChip(c.avg_sentiment)),
      el("td", {}, moodSparkline(c)),
      el("td", { className: "c-opt" }, c.csat ? `${c.csat}★` : "—"));
      if (state.log.selected === c.id) row.classList.add("selected");
      row.addEventListener("click", () => openDetail(c.id));
      row.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          openDetail(c.id);
        }
      });
      body.append(row);
    }
    const pages = Math.max(1, Math.ceil(data.total / data.page_size));
    $("log-summary").textContent = `${data.total} conversation${data.total === 1 ? "" : "s"}`;
    $("log-page").textContent = `Page ${data.page} of ${pages}`;
    $("log-prev").disabled = data.page <= 1;
    $("log-next").disabled = data.page >= pages;
  }

  function moodSparkline(c) {
    const values = (c.timeline || []).filter((v) => typeof v === "number");
    const label = `Sentiment over ${values.length} messages` +
      (c.mood && typeof c.mood.frustration === "number" ? `, frustration ${num(c.mood.frustration, 2)}` : "");
    const T = window.Tandem;
    if (T && T.sparkline) {
      return T.sparkline(values, { width: 80, height: 24, min: -1, max: 1, baseline: 0, label });
    }
    return Charts.sparkline(values, { width: 80, height: 24, label });
  }

  async function openDetail(id) {
    state.log.selected = id;
    for (const row of document.querySelectorAll("#log-rows tr")) {
      row.classList.toggle("selected", row.dataset.conversationId === id);
    }
    const panel = $("log-detail");
    show(panel, true);
    panel.replaceChildren(el("p", { className: "muted" }, "Loading…"));
    let data;
    try {
      data = await api("GET", `/api/owner/log/${encodeURIComponent(id)}`);
    } catch (error) {
      panel.replaceChildren(el("p", { className: "form-error", role: "alert" }, error.detail));
      return;
    }
    renderDetail(panel, data);
    panel.scrollIntoView({ block: "nearest" });
  }

  function renderDetail(panel, data) {
    const c = data.conversation || {};
    const reasons = (c.reason_texts && c.reason_texts.length ? c.reason_texts : c.reasons) || [];
    const close = el("button", { type: "button", className: "btn btn-small", "aria-label": "Close detail" }, "Close");
    close.addEventListener("click", () => {
      show(panel, false);
      state.log.selected = null;
    });
    const unmask = el("button", { type: "button", className: "btn btn-small btn-warn", "data-testid": "unmask" },
      "Unmask personal data");
    const unmasked = el("div", { className: "unmasked", hidden: true });
    unmask.addEventListener("click", () => doUnmask(c.id, unmasked));

    const messages = el("ol", { className: "messages", "aria-label": "Messages" });
    for (const m of data.messages || []) {
      const score = m.sentiment_score;
      const item = el("li", {
        className: `message from-${m.sender}`, "data-testid": "log-message",
        "data-score": score === null || score === undefined ? "" : String(score),
      },
      el("div", { className: "message-meta" },
        el("span", { className: "sender" }, m.sender), el("span", { className: "muted" }, when(m.created_at)),
        m.sender === "customer" ? scoreChip(score) : null,
        m.intent ? el("span", { className: "intent" }, `${m.intent} ${num(m.intent_confidence, 2)}`) : null),
      el("div", { className: "message-text" }, m.text));
      messages.append(item);
    }

    const events = el("ul", { className: "events", "aria-label": "Events" });
    for (const e of data.events || []) {
      const move = e.from || e.to ? `${e.from || "—"} → ${e.to || "—"}` : "";
      events.append(el("li", {}, el("span", { className: "muted" }, when(e.at)), " ",
        el("strong", {}, e.kind), move ? ` ${move}` : "", e.actor ? ` · ${e.actor}` : "",
        e.reason ? ` · ${e.reason}` : ""));
    }
    const escalations = el("ul", { className: "events", "aria-label": "Escalations" });
    for (const x of data.escalations || []) {
      escalations.append(el("li", {}, el("span", { className: "muted" }, when(x.at)), " ",
        `priority ${x.priority ?? "—"}: `, (x.reasons || []).join("; ")));
    }

    panel.replaceChildren(
      el("div", { className: "detail-head" },
        el("div", {},
          el("h2", {}, c.customer ? c.customer.label : "Conversation"),
          el("p", { className: "muted small mono" }, c.id)),
        el("div", { className: "detail-buttons" }, unmask, close)),
      el("dl", { className: "facts" },
        el("dt", {}, "Outcome"), el("dd", {}, el("span", { className: `badge outcome-${c.outcome}` }, OUTCOME_LABELS[c.outcome] || c.outcome || "—")),
        el("dt", {}, "State"), el("dd", {}, c.state || "—"),
        el("dt", {}, "Started"), el("dd", {}, when(c.created_at)),
        el("dt", {}, "Staff"), el("dd", {}, c.staff ? c.staff.name : "—"),
        el("dt", {}, "Avg sentiment"), el("dd", {}, scoreChip(c.avg_sentiment)),
        el("dt", {}, "Lowest"), el("dd", {}, scoreChip(c.min_sentiment)),
        el("dt", {}, "CSAT"), el("dd", {}, c.csat ? `${c.csat} / 5` : "—"),
        el("dt", {}, "Reasons"), el("dd", {}, reasons.length ? reasons.join("; ") : "—")),
      data.masked ? el("p", { className: "note" },
        "Personal data (e-mails, phone numbers, names) is masked. Unmasking is recorded in the audit log.") : null,
      unmasked,
      el("h3", {}, "Messages"), messages,
      (data.escalations || []).length ? el("h3", {}, "Escalations") : null,
      (data.escalations || []).length ? escalations : null,
      el("h3", {}, "Events"), events,
    );
  }

  async function doUnmask(id, box) {
    const reason = await ask({
      title: "Unmask personal data?",
      body: "You will see this conversation's messages unmasked. Your name, the time and your reason are recorded in the audit log.",
      input: "Reason (recorded)", confirm: "Unmask", minLength: 3,
    });
    if (!reason) return;
    let data;
    try {
      data = await api("POST", `/api/owner/privacy/conversations/${encodeURIComponent(id)}/unmask`, { reason });
    } catch (error) {
      return toast(error.detail);
    }
    const list = el("ol", { className: "messages" });
    for (const m of data.messages || []) {
      list.append(el("li", { className: `message from-${m.sender}` },
        el("div", { className: "message-meta" }, el("span", { className: "sender" }, m.sender),
          el("span", { className: "muted" }, when(m.created_at))),
        el("div", { className: "message-text" }, m.text)));
    }
    box.replaceChildren(
      el("h3", {}, "Unmasked messages"),
      el("p", { className: "small" }, `Personal data, shown for: “${reason}”. Recorded as audit entry #${data.audit_id}.`),
      list,
    );
    show(box, true);

  }

  /* ---------- staff ---------- */

  async function loadStaff() {
    let data;
    try {
      data = await api("GET", "/api/owner/staff");
    } catch (error) {
      return setError($("staff-error"), error.detail);
    }
    state.staff = data.staff || [];
    const body = $("staff-rows");
    body.replaceChildren();
    for (const s of state.staff) {
      const deactivate = el("button", { type: "button", className: "btn btn-small btn-danger-ghost", "data-testid": "staff-deactivate", disabled: !s.active || s.id === state.me.id },
        "Deactivate");
      deactivate.addEventListener("click", () => deactivateStaff(s));
      const reset = el("button", { type: "button", className: "btn btn-small", "data-testid": "staff-reset", disabled: !s.active }, "Reset password");
      reset.addEventListener("click", () => resetPassword(s));
      body.append(el("tr", { "data-testid": "staff-row", "data-staff-id": s.id, className: s.active ? "" : "inactive" },
        el("td", {}, s.display_name), el("td", {}, s.email),
        el("td", {}, el("span", { className: `badge role-${s.role}` }, s.role)),
        el("td", {}, s.active ? "Active" : "Deactivated"),
        el("td", {}, String(s.capacity)), el("td", { className: "nowrap" }, when(s.last_login_at)),
        el("td", { className: "row-actions" }, reset, deactivate)));
    }
  }

  async function createStaff(event) {
    event.preventDefault();
    const body = {
      email: $("staff-create-email").value.trim(),
      display_name: $("staff-create-name").value.trim(),
      password: $("staff-create-password").value,
      role: $("staff-create-role").value,
      capacity: Number($("staff-create-capacity").value),
    };
    const problems = [];
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(body.email)) problems.push("Enter a valid e-mail address.");
    if (!body.display_name) problems.push("Enter a display name.");
    if (body.password.length < 10) problems.push("The password must be at least 10 characters long.");
    if (!Number.isInteger(body.capacity) || body.capacity < 0 || body.capacity > 100) {
      problems.push("Capacity must be a whole number from 0 to 100.");
    }
    if (problems.length) return setError($("staff-error"), problems.join(" "));
    try {
      await api("POST", "/api/owner/staff", body);
    } catch (error) {
      return setError($("staff-error"), error.status === 409
        ? `An account with ${body.email} already exists.` : error.detail);
    }
    setError($("staff-error"), "");
    event.target.reset();
    toast(`Account created for ${body.display_name}.`);
    loadStaff();

  }

  async function deactivateStaff(member) {
    const ok = await ask({
      title: `Deactivate ${member.display_name}?`,
      body: "They are logged out at once and can no longer log in. Their conversations and history are kept.",
      confirm: "Deactivate", danger: true,
    });
    if (!ok) return;
    try {
      await api("POST", `/api/owner/staff/${member.id}/deactivate`);
    } catch (error) {
      return toast(error.detail);
    }
    toast(`${member.display_name} was deactivated.`);
    loadStaff();
  }

  async function resetPassword(member) {
    const password = await ask({
      title: `Reset the password of ${member.display_name}?`,
      body: "Their current sessions end; tell them the new password in person.",
      input: "New password (at least 10 characters)", type: "password", confirm: "Reset password", minLength: 10,
    });
    if (!password) return;
    try {
      await api("POST", `/api/owner/staff/${member.id}/reset-password`, { password });
    } catch (error) {
      return toast(error.detail);
    }
    toast(`The password of ${member.display_name} was reset.`);
  }

  /* ---------- canned replies ---------- */

  async function loadCanned() {
    let data;
    try {
      data = await api("GET", "/api/staff/canned-replies");
    } catch (error) {
      return setError($("canned-error"), error.detail);
    }
    const list = $("canned-rows");
    list.replaceChildren();
    const replies = data.replies || [];
    if (!replies.length) list.append(el("li", { className: "empty" }, "No canned replies yet. Add the first one."));
    for (const r of replies) {
      const edit = el("button", { type: "button", className: "btn btn-small", "data-testid": "canned-edit" }, "Edit");
      edit.addEventListener("click", () => editCanned(r));
      const remove = el("button", { type: "button", className: "btn btn-small btn-danger-ghost", "data-testid": "canned-delete" }, "Delete");
      remove.addEventListener("click", () => deleteCanned(r));
      list.append(el("li", { className: "canned-item", "data-testid": "canned-row", "data-canned-id": r.id },
        el("div", {}, el("strong", {}, r.title), el("p", { className: "canned-body" }, r.text)),
        el("div", { className: "row-actions" }, edit, remove)));
    }
  }

  function editCanned(reply) {
    state.editingCanned = reply ? reply.id : null;
    $("canned-title").value = reply ? reply.title : "";
    $("canned-text").value = reply ? reply.text : "";
    $("h-canned-form").textContent = reply ? "Edit reply" : "New reply";
    document.querySelector("[data-testid=canned-save]").textContent = reply ? "Save changes" : "Add reply";
    show($("canned-cancel"), Boolean(reply));
    setError($("canned-error"), "");
    if (reply) $("canned-title").focus();
  }

  async function saveCanned(event) {
    event.preventDefault();
    const body = { title: $("canned-title").value.trim(), text: $("canned-text").value.trim() };
    if (!body.title || !body.text) return setError($("canned-error"), "Enter a title and the reply text.");
    try {
      if (state.editingCanned) await api("PUT", `/api/owner/canned-replies/${state.editingCanned}`, body);
      else await api("POST", "/api/owner/canned-replies", body);
    } catch (error) {
      return setError($("canned-error"), error.detail);
    }
    toast(state.editingCanned ? "Reply saved." : "Reply added.");
    editCanned(null);
    loadCanned();
  }

  async function deleteCanned(reply) {
    const ok = await ask({ title: `Delete “${reply.title}”?`, body: "Staff will no longer see this reply.", confirm: "Delete", danger: true });
    if (!ok) return;
    try {
      await api("DELETE", `/api/owner/canned-replies/${reply.id}`);
    } catch (error) {
      return toast(error.detail);
    }
    if (state.editingCanned === reply.id) editCanned(null);
    toast("Reply deleted.");
    loadCanned();
  }

  /* ---------- handoff settings ---------- */

  function getPath(object, path) {
    return path.split(".").reduce((node, key) => (node === null || node === undefined ? undefined : node[key]), object);
  }

  function isBool(type) {
    return ["bool", "boolean", "checkbox"].includes(String(type).toLowerCase());
  }

  function isNumber(type) {
    return ["int", "integer", "float", "number", "decimal"].includes(String(type).toLowerCase());
  }

  async function loadPolicy() {
    let data;
    try {
      data = await api("GET", "/api/owner/policy");
    } catch (error) {
      return setError($("policy-error"), error.detail);
    }
    renderPolicy(data);
  }

  function renderPolicy(data) {
    state.policy = data;
    const box = $("policy-fields");
    box.replaceChildren();
    // Group by the first part of the path: "triggers.frustration.threshold" → "frustration".
    const groups = new Map();
    for (const field of data.editable || []) {
      const parts = field.path.split(".");
      const group = parts[0] === "triggers" && parts.length > 2 ? parts[1] : "general";
      if (!groups.has(group)) groups.set(group, []);
      groups.get(group).push(field);
    }
    for (const [group, fields] of groups) {
      const set = el("fieldset", { className: "policy-group" },
        el("legend", {}, group === "general" ? "General" : group.replace(/_/g, " ")));
      for (const field of fields) {
        const id = `policy-${field.path.replace(/[^a-z0-9]+/gi, "-")}`;
        const value = getPath(data.policy, field.path);
        let input;
        if (isBool(field.type)) {
          input = el("input", { type: "checkbox", id, "data-path": field.path, "data-type": "bool" });
          input.checked = Boolean(value);
          set.append(el("div", { className: "check" }, input, el("label", { for: id }, field.label)));
        } else {
          const numeric = isNumber(field.type);
          const integer = ["int", "integer"].includes(String(field.type).toLowerCase());
          input = el("input", {
            type: numeric ? "number" : "text", id, "data-path": field.path,
            "data-type": numeric ? (integer ? "int" : "float") : "text",
            min: field.min ?? null, max: field.max ?? null, step: numeric ? (integer ? 1 : "any") : null,
          });
          input.value = value === null || value === undefined ? "" : String(value);
          const range = field.min !== null && field.min !== undefined && field.max !== null && field.max !== undefined
            ? ` (${field.min}–${field.max})` : "";
          set.append(el("div", { className: "field" },
            el("label", { for: id }, field.label, el("span", { className: "muted" }, range)), input));
        }
      }
      box.append(set);
    }
  }

  async function savePolicy(event) {
    event.preventDefault();
    setError($("policy-error"), "");
    show($("policy-saved"), false);
    for (const input of $("policy-fields").querySelectorAll("[aria-invalid]")) {
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
    }
    const changes = {};
    for (const input of $("policy-fields").querySelectorAll("[data-path]")) {
      const path = input.dataset.path;
      const before = getPath(state.policy.policy, path);
      let value;
      if (input.dataset.type === "bool") value = input.checked;
      else if (input.dataset.type === "text") value = input.value;
      else {
        // An empty number means "off" only where the policy already allowed null.
        value = input.value.trim() === "" ? null : Number(input.value);
        if (value !== null && Number.isNaN(value)) {
          return setError($("policy-error"), `${input.labels[0].firstChild.textContent}: enter a number.`);
        }
      }
      if (value !== before) changes[path] = value;
    }
    if (!Object.keys(changes).length) {
      $("policy-saved").textContent = "Nothing changed.";
      return show($("policy-saved"), true);
    }
    let data;
    try {
      data = await api("PUT", "/api/owner/policy", { changes });
    } catch (error) {
      // The detail names the field ("triggers.x.y: ..."): mark that input too.
      const bad = [...$("policy-fields").querySelectorAll("[data-path]")]
        .find((input) => String(error.detail).startsWith(`${input.dataset.path}:`));
      if (bad) {
        bad.setAttribute("aria-invalid", "true");
        bad.setAttribute("aria-describedby", "policy-error");
      }
      return setError($("policy-error"), error.detail);
    }
    state.policy = { ...state.policy, policy: data.policy };
    const count = Object.keys(changes).length;
    $("policy-saved").textContent = `Saved ${count} change${count === 1 ? "" : "s"}. New messages use them now.`;
    show($("policy-saved"), true);
  }

  /* ---------- privacy ---------- */

  async function loadPrivacy() {
    loadRetention();
    loadAudit();
  }

  async function loadRetention() {
    const box = $("retention");
    try {
      const data = await api("GET", "/api/owner/privacy/retention");
      box.replaceChildren(
        el("h2", { className: "card-title" }, "Retention"),
        el("p", {}, data.retention_days
          ? `Conversations are kept for ${data.retention_days} days, then deleted automatically.`
          : "Conversations are kept until you delete them (no retention limit is set)."),
        el("p", { className: "muted" }, `Oldest stored conversation: ${when(data.oldest_conversation_at)}`));
    } catch (error) {
      box.replaceChildren(el("p", { className: "form-error" }, error.detail));
    }
  }

  async function loadAudit() {
    const body = $("audit-rows");
    try {
      const data = await api("GET", "/api/owner/privacy/audit");
      body.replaceChildren();
      const entries = data.entries || [];
      if (!entries.length) body.append(el("tr", {}, el("td", { colspan: 5, className: "empty" }, "Nothing recorded yet.")));
      for (const e of entries) {
        const detail = e.detail && typeof e.detail === "object" ? JSON.stringify(e.detail) : e.detail;
        body.append(el("tr", { "data-testid": "audit-row" },
          el("td", { className: "nowrap" }, when(e.at)), el("td", {}, e.actor ?? "—"),
          el("td", {}, e.action), el("td", { className: "mono small" }, e.target ?? "—"),
          el("td", { className: "small" }, detail ?? "")));
      }
    } catch (error) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: 5, className: "form-error" }, error.detail)));
    }
  }

  async function searchCustomers(event) {
    if (event) event.preventDefault();
    const q = $("privacy-search").value.trim();
    const box = $("privacy-results");
    if (!q) return setError($("privacy-error"), "Enter an e-mail, a name or a customer id.");
    setError($("privacy-error"), "");
    let data;
    try {
      data = await api("GET", `/api/owner/privacy/customers?${new URLSearchParams({ q })}`);
    } catch (error) {
      return setError($("privacy-error"), error.detail);
    }
    box.replaceChildren();
    const customers = data.customers || [];
    if (!customers.length) box.append(el("p", { className: "muted" }, "No customer matches."));
    for (const c of customers) {
      const exportLink = el("a", {
        className: "btn btn-small", "data-testid": "privacy-export", download: `customer-${c.id}.json`,
        href: `/api/owner/privacy/customers/${encodeURIComponent(c.id)}/export`,
      }, "Export data (JSON)");
      const remove = el("button", { type: "button", className: "btn btn-small btn-danger", "data-testid": "privacy-delete" },
        "Delete everything");
      remove.addEventListener("click", () => deleteCustomer(c));
      box.append(el("div", { className: "card customer-card", "data-customer-id": c.id },
        el("div", {}, el("strong", {}, c.name || "Unnamed customer"), " ",
          c.tier ? el("span", { className: `tier tier-${c.tier}` }, c.tier) : null,
          el("div", { className: "muted small" }, `${c.email || "no e-mail"} · id ${c.id} · ${c.conversations} conversation${c.conversations === 1 ? "" : "s"}`)),
        el("div", { className: "row-actions" }, exportLink, remove)));
    }
  }

  async function deleteCustomer(customer) {
    const confirmWith = customer.email || String(customer.id);
    const typed = await ask({
      title: `Delete everything about ${customer.name || "this customer"}?`,
      body: `Their customer record, conversations, messages, orders and bookings are deleted for good. This cannot be undone. Type ${customer.email ? "their e-mail" : "their id"} (${confirmWith}) to confirm.`,
      input: customer.email ? "Customer e-mail" : "Customer id", mustEqual: confirmWith, confirm: "Delete for good", danger: true,
    });
    if (!typed) return;
    let data;
    try {
      data = await api("DELETE", `/api/owner/privacy/customers/${encodeURIComponent(customer.id)}`);
    } catch (error) {
      return setError($("privacy-error"), error.detail);
    }
    const counts = Object.entries((data && data.deleted) || {}).map(([k, v]) => `${v} ${k}`).join(", ");
    toast(`Deleted: ${counts || "done"}.`);
    $("privacy-results").replaceChildren(el("p", { className: "form-ok", role: "status" }, `Deleted ${counts || "everything"}.`));
    loadAudit();


  }

  /* ---------- wiring ---------- */

  const LOADERS = {
    reports: loadReports,
    log: () => {
      if (!state.loaded.logMeta) {
        state.loaded.logMeta = true;
        loadLogMeta();
      }
      loadLog();
    },
    tickets: () => {
      if (!state.tickets) {
        state.tickets = window.TandemTickets.mount($("tickets-inbox"), {
          userId: () => state.me && state.me.id,
          onSessionEnd: () => showLogin("Your session has ended. Please log in again."),
        });
      }
      state.tickets.refresh();
    },
    staff: loadStaff,
    canned: loadCanned,
    settings: loadPolicy,
    privacy: loadPrivacy,
  };

  function init() {
    $("login-form").addEventListener("submit", login);
    $("logout").addEventListener("click", logout);
    $("not-owner-logout").addEventListener("click", logout);
    window.addEventListener("hashchange", () => state.me && route());
    // Charts are drawn at their container's width: redraw after a resize settles.
    let resizeTimer = 0;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => {
        if (state.report && state.section === "reports") renderReports(state.report);
      }, 200);
    });
    for (const button of document.querySelectorAll(".presets button")) {
      button.addEventListener("click", () => setPeriod(Number(button.dataset.days)));
    }
    $("report-form").addEventListener("submit", (event) => {
      event.preventDefault();
      for (const button of document.querySelectorAll(".presets button")) button.setAttribute("aria-pressed", "false");
      loadReports();
    });
    $("log-filters").addEventListener("submit", (event) => {
      event.preventDefault();
      state.log.page = 1;
      loadLog();
    });
    $("log-filters").addEventListener("change", updateExports);
    $("filter-search").addEventListener("input", updateExports);
    $("filter-reset").addEventListener("click", () => {
      $("log-filters").reset();
      state.log.page = 1;
      loadLog();
    });
    $("log-prev").addEventListener("click", () => {
      state.log.page = Math.max(1, state.log.page - 1);
      loadLog();
    });
    $("log-next").addEventListener("click", () => {
      state.log.page += 1;
      loadLog();
    });
    $("staff-form").addEventListener("submit", createStaff);
    $("canned-form").addEventListener("submit", saveCanned);
    $("canned-cancel").addEventListener("click", () => editCanned(null));
    $("policy-form").addEventListener("submit", savePolicy);
    $("privacy-form").addEventListener("submit", searchCustomers);
    boot();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
