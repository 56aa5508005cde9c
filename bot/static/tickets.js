/*
 * The ticket inbox, shared by the staff console and the owner dashboard.
 *
 *   TandemTickets.mount(container, {onSessionEnd}) -> {refresh(), reload()}
 *
 * Lists tickets by status (open, in progress, done), opens one (the request, the
 * transcript and the contact: the server records each opening in the audit log),
 * claims, replies by e-mail and marks done, through /api/staff/tickets. Needs
 * common.js (window.Tandem). All data is rendered as text.
 */
(function () {
  "use strict";

  var T = window.Tandem;
  var el = T.el;
  var FILTERS = [
    { status: "open", label: "Open" },
    { status: "in_progress", label: "In progress" },
    { status: "done", label: "Done" }
  ];
  var STATUS_LABELS = { open: "Open", in_progress: "In progress", done: "Done" };

  function ago(iso) {
    if (!iso) return "";
    var seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    return T.formatDuration(seconds) + " ago";
  }

  function mount(container, options) {
    options = options || {};
    var state = { status: "open", mine: false, tickets: [], openId: null, loading: null };

    var error = el("p", { class: "tickets-error", role: "alert", testid: "ticket-error",
      hidden: true });
    var filterButtons = {};
    var filters = el("div", { class: "tickets-filters", role: "group",
      "aria-label": "Show tickets" },
      FILTERS.map(function (f) {
        var count = el("span", { class: "tickets-count", testid: "ticket-count-" + f.status });
        var button = el("button", {
          type: "button", class: "btn btn-small", testid: "ticket-filter-" + f.status,
          "aria-pressed": f.status === state.status ? "true" : "false",
          on: { click: function () { choose(f.status); } }
        }, f.label + " ", count);
        filterButtons[f.status] = { button: button, count: count };
        return button;
      }));
    var mineBox = el("input", { type: "checkbox", testid: "ticket-mine",
      on: { change: function () { state.mine = mineBox.checked; reload(); } } });
    var list = el("ul", { class: "tickets-list", testid: "ticket-list",
      "aria-label": "Tickets" });
    var empty = el("p", { class: "tickets-empty muted", hidden: true }, "No tickets here.");
    var detail = el("section", { class: "tickets-detail", testid: "ticket-detail",
      "aria-label": "Ticket", hidden: true });
    var placeholder = el("p", { class: "tickets-placeholder muted" },
      "Open a ticket to see the request and the customer's contact.");

    container.appendChild(el("div", { class: "tickets" },
      el("div", { class: "tickets-side" },
        el("div", { class: "tickets-toolbar" }, filters,
          el("label", { class: "tickets-mine" }, mineBox, " Mine only")),
        error, list, empty),
      el("div", { class: "tickets-main" }, placeholder, detail)));

    function myId() {
      return options.userId ? options.userId() : null;
    }

    function showError(err) {
      if (err instanceof T.ApiError && err.status === 401 && options.onSessionEnd) {
        options.onSessionEnd();
        return;
      }
      error.textContent = T.errorText(err);
      error.hidden = false;
    }

    function hideError() {
      error.hidden = true;
      error.textContent = "";
    }

    function choose(status) {
      state.status = status;
      Object.keys(filterButtons).forEach(function (key) {
        filterButtons[key].button.setAttribute("aria-pressed", key === status ? "true" : "false");
      });
      reload();
    }

    function reload() {
      var query = "?status=" + encodeURIComponent(state.status) + (state.mine ? "&mine=true" : "");
      state.loading = T.api("/api/staff/tickets" + query).then(function (body) {
        state.tickets = body.tickets;
        FILTERS.forEach(function (f) {
          var n = body.counts[f.status] || 0;
          filterButtons[f.status].count.textContent = String(n);
          filterButtons[f.status].count.dataset.value = String(n);
        });
        renderList();
        if (options.onCounts) options.onCounts(body.counts);
      }, showError);
      return state.loading;
    }

    function renderList() {
      T.clear(list);
      empty.hidden = state.tickets.length > 0;
      state.tickets.forEach(function (ticket) {
        var who = ticket.assigned ? ticket.assigned.name : "nobody yet";
        list.appendChild(el("li", {
          class: "tickets-item" + (ticket.id === state.openId ? " selected" : ""),
          testid: "ticket-item", dataset: { ticketId: ticket.id, status: ticket.status }
        }, el("button", {
          type: "button", class: "tickets-open",
          "aria-label": "Open ticket #" + ticket.id,
          on: { click: function () {
            open(ticket.id).then(function () {
              // One column on a phone: the ticket is below the list.
              if (window.matchMedia("(max-width: 900px)").matches) detail.scrollIntoView();
            });
          } }
        },
          el("span", { class: "tickets-top" },
            el("strong", {}, "#" + ticket.id),
            el("span", { class: "tickets-status status-" + ticket.status },
              STATUS_LABELS[ticket.status] || ticket.status),
            el("span", { class: "muted small" }, ago(ticket.created_at))),
          el("span", { class: "tickets-excerpt", testid: "ticket-excerpt" },
            ticket.request_excerpt || "(no question was written)"),
          el("span", { class: "muted small" },
            (ticket.awaiting_contact ? "No contact left · " : "") +
            (ticket.has_email ? "" : "No e-mail · ") + "Assigned: " + who))));
      });
    }

    function open(id) {
      hideError();
      state.openId = id;
      renderList();
      return T.api("/api/staff/tickets/" + id).then(renderDetail, showError);
    }

    function act(path, body) {
      hideError();
      return T.api(path, { method: "POST", body: body || {} }).then(function (result) {
        reload();
        return open(state.openId).then(function () { return result; });
      }, function (err) {
        showError(err);
        throw err;
      });
    }

    function facts(pairs) {
      return el("dl", { class: "tickets-facts" }, pairs.filter(function (p) { return p[1]; })
        .map(function (p) { return [el("dt", {}, p[0]), el("dd", { testid: p[2] }, p[1])]; }));
    }

    function renderDetail(ticket) {
      placeholder.hidden = true;
      detail.hidden = false;
      detail.dataset.ticketId = String(ticket.id);
      detail.dataset.status = ticket.status;
      T.clear(detail);
      var base = "/api/staff/tickets/" + ticket.id;
      var working = ticket.status !== "done";
      detail.appendChild(el("div", { class: "tickets-head" },
        el("h2", {}, "Ticket #" + ticket.id),
        el("span", { class: "tickets-status status-" + ticket.status, testid: "ticket-status" },
          STATUS_LABELS[ticket.status] || ticket.status),
        working && (!ticket.assigned || ticket.assigned.id !== myId())
          ? el("button", { type: "button", class: "btn btn-primary btn-small",
            testid: "ticket-claim", on: { click: function () { act(base + "/claim"); } } },
          ticket.assigned ? "Take over" : "Claim")
          : null));
      var contact = ticket.contact;
      detail.appendChild(el("section", { class: "card tickets-card", "aria-label": "Contact" },
        el("h3", {}, "Contact"),
        facts([
          ["Name", contact.name, "ticket-contact-name"],
          ["E-mail", contact.email, "ticket-contact-email"],
          ["Phone", contact.phone, "ticket-contact-phone"]
        ]),
        contact.email || contact.phone ? null
          : el("p", { class: "muted" }, "The customer left without giving a contact.")));
      detail.appendChild(el("section", { class: "card tickets-card", "aria-label": "Request" },
        el("h3", {}, "What they asked"),
        el("ul", { class: "tickets-request", testid: "ticket-request" },
          ticket.request.length ? ticket.request.map(function (m) {
            return el("li", {}, m.text);
          }) : el("li", { class: "muted" }, "(no question was written)")),
        facts([
          ["Why", (ticket.reasons || []).join(" · "), "ticket-reasons"],
          ["Filed", T.formatTime(ticket.created_at), null],
          ["Promised by", ticket.reply_by ? T.formatTime(ticket.reply_by) : null, null],
          ["Assigned", ticket.assigned ? ticket.assigned.name : null, "ticket-assigned"],
          ["Resolution", ticket.resolution, null]
        ]),
        el("details", { class: "tickets-transcript" },
          el("summary", {}, "Whole conversation (" + ticket.transcript.length + " messages)"),
          el("ol", { testid: "ticket-transcript" }, ticket.transcript.map(function (m) {
            return el("li", { class: "from-" + m.sender },
              el("span", { class: "muted small" }, m.sender + " · " + T.formatTime(m.created_at)),
              " ", m.text);
          })))));
      if (ticket.reply_log.length) {
        detail.appendChild(el("section", { class: "card tickets-card", "aria-label": "Replies" },
          el("h3", {}, "Replies sent"),
          el("ol", { class: "tickets-replies", testid: "ticket-replies" },
            ticket.reply_log.map(function (r) {
              return el("li", { testid: "ticket-reply-item" },
                el("div", { class: "muted small" }, r.staff.name + " to " + r.to + " · " +
                  T.formatTime(r.sent_at) + (r.transport === "file" ? " (outbox)" : "")),
                el("div", { class: "tickets-reply-subject" }, r.subject),
                el("pre", { class: "tickets-reply-body" }, r.body));
            }))));
      }
      if (!working) return;
      if (contact.email) {
        var subject = el("input", { type: "text", id: "ticket-reply-subject", maxlength: 200,
          testid: "ticket-reply-subject", placeholder: "Subject (optional)" });
        var text = el("textarea", { id: "ticket-reply-text", rows: 6, maxlength: 10000,
          testid: "ticket-reply-text", required: true });
        var send = el("button", { type: "submit", class: "btn btn-primary",
          testid: "ticket-reply-send" }, "Send e-mail");
        detail.appendChild(el("form", {
          class: "card tickets-card tickets-form", "aria-label": "Reply by e-mail",
          on: { submit: function (event) {
            event.preventDefault();
            if (!text.value.trim()) { text.focus(); return; }
            send.disabled = true;
            act(base + "/reply", { text: text.value, subject: subject.value || null })
              .then(null, function () { send.disabled = false; });
          } }
        },
          el("h3", {}, "Reply by e-mail to " + contact.email),
          el("label", { for: "ticket-reply-subject", class: "sr-only" }, "Subject"), subject,
          el("label", { for: "ticket-reply-text", class: "sr-only" }, "Reply"), text,
          send));
      }
      var note = el("input", { type: "text", id: "ticket-done-note", maxlength: 2000,
        testid: "ticket-done-note", placeholder: "What was done (optional)" });
      detail.appendChild(el("form", {
        class: "card tickets-card tickets-form tickets-done", "aria-label": "Mark done",
        on: { submit: function (event) {
          event.preventDefault();
          act(base + "/done", { resolution: note.value || null });
        } }
      },
        el("label", { for: "ticket-done-note", class: "sr-only" }, "Resolution note"), note,
        el("button", { type: "submit", class: "btn", testid: "ticket-done" }, "Mark done")));
    }

    return { refresh: reload, reload: reload, open: open };
  }

  window.TandemTickets = { mount: mount };
})();
