/*
 * The staff console (/staff): login, live queue, conversation, customer context.
 *
 * Live updates come over /ws/staff (events only say "look again", so the console reloads
 * the queue or the open conversation from the API). While the socket is down the console
 * polls GET /api/staff/queue and reconnects with back-off. All data is rendered as text.
 */
(function () {
  "use strict";

  var T = window.Tandem;
  var el = T.el;
  var $ = function (id) { return document.getElementById(id); };

  var POLL_MS = 4000;
  var PING_MS = 10000;
  var SAFETY_REFRESH_MS = 30000;
  var BASE_TITLE = "Tandem staff";

  var state = {
    user: null,
    queue: [],
    queueFetchedAt: 0,
    knownQueue: null, // ids seen in the queue so far; null until the first load
    labels: {}, // conversation id -> customer label, remembered from the queue
    mine: [],
    presence: null,
    team: [],
    canned: [],
    openId: null,
    context: null,
    socket: null,
    socketUp: false,
    backoff: 1000,
    reconnectTimer: null,
    pingTimer: null,
    pollTimer: null,
    tickTimer: null,
    safetyTimer: null,
    queueLoading: null,
    queueAgain: false,
    contextTimer: null,
    notificationTimer: null,
    tickets: null, // the ticket inbox (tickets.js), mounted when first shown
    stopped: true
  };

  // ------------------------------------------------------------------ helpers

  function showError(text) {
    $("action-error-text").textContent = text;
    $("action-error").hidden = false;
  }

  function hideError() {
    $("action-error").hidden = true;
    $("action-error-text").textContent = "";
  }

  function handleError(error) {
    if (error instanceof T.ApiError && error.status === 401) {
      showLogin("Your session has ended. Please log in again.");
      return;
    }
    showError(T.errorText(error));
  }

  function moodColour(frustration) {
    if (frustration === null || frustration === undefined) return "calm";
    if (frustration >= 0.6) return "high";
    if (frustration >= 0.3) return "medium";
    return "calm";
  }

  function customerLabel(label) {
    return label || "Anonymous customer";
  }

  function memberName(id) {
    for (var i = 0; i < state.team.length; i++) {
      if (state.team[i].id === id) return state.team[i].display_name;
    }
    return id === (state.user && state.user.id) ? state.user.display_name : "a colleague";
  }

  function updateTitle() {
    var n = state.queue.length;
    document.title = n > 0 ? "(" + n + ") " + BASE_TITLE : BASE_TITLE;
    $("tab-queue-count").textContent = n > 0 ? String(n) : "";
  }

  function showPane(paneId) {
    document.querySelector(".columns").dataset.active = paneId;
    Array.prototype.forEach.call(document.querySelectorAll(".tabs [role=tab]"), function (tab) {
      var selected = tab.dataset.pane === paneId;
      tab.setAttribute("aria-selected", selected ? "true" : "false");
      tab.tabIndex = selected ? 0 : -1; // one tab stop; arrows move between tabs
    });
  }

  // Live chats or the ticket inbox (the inbox loads when first shown).
  function showView(view) {
    document.getElementById("console").dataset.view = view;
    $("tickets-view").hidden = view !== "tickets";
    Array.prototype.forEach.call(document.querySelectorAll(".views [role=tab]"), function (tab) {
      var selected = tab.dataset.view === view;
      tab.setAttribute("aria-selected", selected ? "true" : "false");
      tab.tabIndex = selected ? 0 : -1;
    });
    if (view === "tickets") ticketInbox().refresh();
  }

  function ticketInbox() {
    if (!state.tickets) {
      state.tickets = window.TandemTickets.mount($("tickets-view"), {
        userId: function () { return state.user && state.user.id; },
        onSessionEnd: function () { showLogin("Your session has ended. Please log in again."); },
        onCounts: showTicketCount
      });
    }
    return state.tickets;
  }

  function showTicketCount(counts) {
    $("tab-tickets-count").textContent = counts.open > 0 ? String(counts.open) : "";
  }

  function refreshTicketCount() {
    if (state.stopped) return;
    if (state.tickets && !$("tickets-view").hidden) {
      state.tickets.refresh();
      return;
    }
    T.api("/api/staff/tickets?status=open&limit=1").then(function (body) {
      showTicketCount(body.counts);
    }, function () { /* the queue's refresh reports a lost session */ });
  }

  function activateTab(tab) {
    if (tab.dataset.view) showView(tab.dataset.view);
    else showPane(tab.dataset.pane);
  }

  // The WAI-ARIA tabs pattern: Left/Right (and Home/End) move to and open a tab.
  function onTabKey(event) {
    var list = event.currentTarget.closest("[role=tablist]");
    var tabs = Array.prototype.slice.call(list.querySelectorAll("[role=tab]"));
    var index = tabs.indexOf(event.currentTarget);
    var next = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 }[
      event.key];
    if (next === undefined) return;
    event.preventDefault();
    var tab = tabs[(next + tabs.length) % tabs.length];
    activateTab(tab);
    tab.focus();
  }

  // ------------------------------------------------------------------ login / start

  function showLogin(message) {
    stop();
    $("console").hidden = true;
    var screen = T.clear($("login-screen"));
    var form = T.loginForm({
      title: "Staff console",
      subtitle: "Log in to answer customers waiting for a person.",
      onLogin: function (user) { start(user); }
    });
    screen.appendChild(form);
    screen.hidden = false;
    document.title = BASE_TITLE;
    if (message) {
      var error = form.querySelector("[data-testid=login-error]");
      error.textContent = message;
      error.hidden = false;
    }
    var email = form.querySelector("[data-testid=login-email]");
    if (email) email.focus();
  }

  function start(user) {
    state.user = user;
    state.stopped = false;
    state.knownQueue = null;
    $("login-screen").hidden = true;
    $("console").hidden = false;
    $("me-name").textContent = user.display_name;
    $("capacity-input").value = user.capacity;
    hideError();
    loadTeam();
    loadCanned();
    refreshQueue();
    refreshTicketCount();
    connect();
    state.tickTimer = setInterval(tick, 1000);
    state.safetyTimer = setInterval(function () {
      refreshQueue();
      loadTeam();
    }, SAFETY_REFRESH_MS);
  }

  function stop() {
    state.stopped = true;
    [state.tickTimer, state.safetyTimer, state.pollTimer, state.pingTimer].forEach(clearInterval);
    clearTimeout(state.reconnectTimer);
    state.tickTimer = state.safetyTimer = state.pollTimer = state.pingTimer = null;
    if (state.socket) {
      state.socket.onclose = null;
      try { state.socket.close(); } catch (e) { /* already closed */ }
      state.socket = null;
    }
    state.socketUp = false;
    state.openId = null;
    state.context = null;
    if (state.tickets) { // the next login may be someone else
      T.clear($("tickets-view"));
      state.tickets = null;
    }
  }

  // ------------------------------------------------------------------ live socket

  function setConnection(up) {
    state.socketUp = up;
    var badge = $("connection");
    badge.className = "connection " + (up ? "up" : "down");
    badge.textContent = up ? "Live" : "Reconnecting…";
    badge.title = up ? "Live updates are on" : "Live updates are off; checking every few seconds";
  }

  function connect() {
    if (state.stopped) return;
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket;
    try {
      socket = new WebSocket(scheme + location.host + "/ws/staff");
    } catch (e) {
      scheduleReconnect();
      return;
    }
    state.socket = socket;
    socket.onopen = function () {
      state.backoff = 1000;
      setConnection(true);
      stopPolling();
      clearInterval(state.pingTimer);
      state.pingTimer = setInterval(ping, PING_MS);
      ping();
      refreshQueue(); // catch up on whatever happened while we were away
      if (state.openId) loadContext(state.openId);
    };
    socket.onmessage = function (message) {
      var event;
      try { event = JSON.parse(message.data); } catch (e) { return; }
      onEvent(event);
    };
    socket.onclose = function (close) {
      state.socket = null;
      clearInterval(state.pingTimer);
      setConnection(false);
      if (close.code === 4401) {
        showLogin("Your session has ended. Please log in again.");
        return;
      }
      startPolling();
      scheduleReconnect();
    };
    socket.onerror = function () { /* onclose follows */ };
  }

  function scheduleReconnect() {
    if (state.stopped) return;
    clearTimeout(state.reconnectTimer);
    var wait = state.backoff + Math.random() * 500;
    state.backoff = Math.min(state.backoff * 2, 30000);
    state.reconnectTimer = setTimeout(connect, wait);
  }

  function ping() {
    if (state.socket && state.socket.readyState === WebSocket.OPEN) {
      state.socket.send(JSON.stringify({ type: "ping" }));
    }
  }

  function startPolling() {
    if (state.pollTimer || state.stopped) return;
    state.pollTimer = setInterval(function () {
      refreshQueue();
      // Keep presence alive without the socket's pings.
      if (state.presence && state.presence.state !== "offline") {
        T.api("/api/staff/presence/heartbeat", { method: "POST" }).then(function (body) {
          if (body && body.alive === false) putPresence(state.presence.state, capacityValue());
        }, function () { /* the next poll shows the problem */ });
      }
      if (state.openId) loadContext(state.openId);
    }, POLL_MS);
  }

  function stopPolling() {
    clearInterval(state.pollTimer);
    state.pollTimer = null;
  }

  function onEvent(event) {
    switch (event.type) {
      case "pong":
        if (event.presence_alive === false && state.presence && state.presence.state !== "offline") {
          putPresence(state.presence.state, capacityValue());
        }
        return;
      case "ready":
      case "error":
        return;
      case "ticket":
        refreshTicketCount();
        // falls through: a new ticket may have left the queue
      case "escalation":
      case "queue_changed":
      case "sla_overdue":
        refreshQueue();
        if (event.conversation_id && event.conversation_id === state.openId) scheduleContext();
        if (event.type === "queue_changed" && event.change === "transferred") loadTeam();
        return;
      case "customer_message":
      case "staff_message":
      case "note":
        if (event.conversation_id === state.openId) scheduleContext();
        return;
      default:
        return;
    }
  }

  // ------------------------------------------------------------------ queue

  function refreshQueue() {
    if (state.stopped) return Promise.resolve();
    if (state.queueLoading) {
      state.queueAgain = true;
      return state.queueLoading;
    }
    state.queueLoading = T.api("/api/staff/queue").then(function (body) {
      applyQueue(body);
    }, function (error) {
      if (error instanceof T.ApiError && error.status === 401) handleError(error);
    }).then(function () {
      state.queueLoading = null;
      if (state.queueAgain) {
        state.queueAgain = false;
        refreshQueue();
      }
    });
    return state.queueLoading;
  }

  function applyQueue(body) {
    var fresh = [];
    var ids = {};
    body.queue.forEach(function (entry) {
      ids[entry.conversation_id] = true;
      if (entry.customer_label) state.labels[entry.conversation_id] = entry.customer_label;
      if (state.knownQueue && !state.knownQueue[entry.conversation_id]) fresh.push(entry);
    });
    state.knownQueue = ids;
    state.queue = body.queue;
    state.queueFetchedAt = Date.now();
    state.mine = body.mine;
    applyPresence(body.presence);
    $("online-staff").textContent = body.online_staff + " online";
    renderQueue();
    renderMine();
    updateTitle();
    if (fresh.length) notify(fresh);
  }

  // Re-rendering replaces the buttons: put keyboard focus back where it was.
  function focusedSpot() {
    var active = document.activeElement;
    var item = active && active.closest && active.closest("[data-conversation-id]");
    if (!item || !item.parentNode || (item.parentNode.id !== "queue" && item.parentNode.id !== "mine")) {
      return null;
    }
    return { list: item.parentNode.id, id: item.dataset.conversationId, cls: active.className };
  }

  function restoreFocus(spot) {
    if (!spot) return;
    Array.prototype.forEach.call($(spot.list).children, function (item) {
      if (item.dataset.conversationId !== spot.id) return;
      var target = item.querySelector("button." + spot.cls.split(" ").filter(Boolean).join("."));
      if (target) target.focus();
    });
  }

  function renderQueue() {
    var spot = focusedSpot();
    var list = T.clear($("queue"));
    $("queue-count").textContent = String(state.queue.length);
    $("queue-empty").hidden = state.queue.length > 0;
    state.queue.forEach(function (entry) {
      var mood = entry.mood;
      var frustration = mood ? mood.frustration : null;
      var moodText = mood ? Math.round(frustration * 100) + "%" : "–";
      var item = el("li", {
        class: "queue-item" + (entry.conversation_id === state.openId ? " selected" : ""),
        testid: "queue-item", dataset: { conversationId: entry.conversation_id }
      },
        el("button", {
          type: "button", class: "queue-open",
          "aria-label": "Preview conversation with " + customerLabel(entry.customer_label),
          on: { click: function () { openConversation(entry.conversation_id); } }
        },
          el("span", { class: "queue-top" },
            el("span", { class: "queue-label" }, customerLabel(entry.customer_label)),
            el("span", { class: "queue-wait", testid: "queue-wait",
              dataset: { seconds: entry.waiting_seconds } }, T.formatDuration(entry.waiting_seconds))),
          el("span", { class: "queue-reasons", testid: "queue-reasons" },
            (entry.reasons || []).join(" · ") || "escalated"),
          el("span", { class: "queue-meta" },
            el("span", {
              class: "mood mood-" + moodColour(frustration), testid: "queue-mood",
              title: mood ? mood.explanation : "no mood yet",
              "aria-label": "Frustration " + moodText + (mood ? " (" + mood.explanation + ")" : "")
            }, el("span", { class: "mood-dot", "aria-hidden": "true" }), "Frustration " + moodText),
            el("span", { class: "queue-value", testid: "queue-value",
              title: "Customer lifetime value" },
            entry.customer_value > 0 ? T.formatMoney(entry.customer_value) + " lifetime" : "New or unverified"),
            entry.priority > 0 ? el("span", { class: "priority" }, "P" + entry.priority) : null)),
        el("button", {
          type: "button", class: "btn btn-primary btn-small claim", testid: "claim",
          on: { click: function () { claim(entry.conversation_id); } }
        }, "Claim"));
      list.appendChild(item);
    });
    restoreFocus(spot);
  }

  function renderMine() {
    var spot = focusedSpot();
    var list = T.clear($("mine"));
    $("mine-count").textContent = String(state.mine.length);
    $("mine-empty").hidden = state.mine.length > 0;
    state.mine.forEach(function (entry) {
      var frustration = entry.mood ? entry.mood.frustration : null;
      list.appendChild(el("li", {
        class: "mine-item" + (entry.conversation_id === state.openId ? " selected" : ""),
        testid: "mine-item", dataset: { conversationId: entry.conversation_id }
      }, el("button", {
        type: "button", class: "mine-open",
        on: { click: function () { openConversation(entry.conversation_id); } }
      },
        el("span", { class: "mood-dot mood-" + moodColour(frustration), "aria-hidden": "true",
          title: entry.mood ? entry.mood.explanation : "" }),
        el("span", { class: "mine-label" }, state.labels[entry.conversation_id] ||
          "Conversation " + entry.conversation_id.slice(0, 8)),
        entry.mood ? el("span", { class: "muted small" },
          Math.round(frustration * 100) + "%") : null)));
    });
    restoreFocus(spot);
  }

  function tick() {
    var elapsed = (Date.now() - state.queueFetchedAt) / 1000;
    Array.prototype.forEach.call(document.querySelectorAll("[data-testid=queue-wait]"), function (node) {
      node.textContent = T.formatDuration(Number(node.dataset.seconds) + elapsed);
    });
  }

  function notify(entries) {
    var first = entries[0];
    var text = entries.length === 1
      ? "New conversation waiting: " + customerLabel(first.customer_label) +
        ((first.reasons || []).length ? " — " + first.reasons.join(", ") : "")
      : entries.length + " new conversations waiting";
    $("notification-text").textContent = text;
    $("notification").hidden = false;
    $("notification").dataset.conversationId = first.conversation_id;
    clearTimeout(state.notificationTimer);
    state.notificationTimer = setTimeout(function () { $("notification").hidden = true; }, 10000);
    T.beep();
  }

  // ------------------------------------------------------------------ presence, team, canned

  function capacityValue() {
    var n = parseInt($("capacity-input").value, 10);
    return isNaN(n) ? null : Math.max(0, Math.min(100, n));
  }

  function applyPresence(presence) {
    state.presence = presence;
    var select = $("presence-select");
    if (document.activeElement !== select) select.value = presence.state;
    $("presence-dot").className = "presence-dot " + presence.state;
    var input = $("capacity-input");
    if (presence.state !== "offline" && document.activeElement !== input) {
      input.value = presence.capacity;
    }
  }

  function putPresence(presenceState, capacity) {
    var body = { state: presenceState };
    if (capacity !== null && capacity !== undefined) body.capacity = capacity;
    return T.api("/api/staff/presence", { method: "PUT", body: body }).then(function (result) {
      applyPresence(result);
      loadTeam();
    }, handleError);
  }

  function loadTeam() {
    return T.api("/api/staff/team").then(function (body) {
      state.team = body.team;
      renderTeam();
    }, function () { /* the picker keeps its last list */ });
  }

  function renderTeam() {
    var select = $("transfer-select");
    var chosen = select.value;
    T.clear(select).appendChild(el("option", { value: "" }, "Transfer to…"));
    state.team.forEach(function (member) {
      if (state.user && member.id === state.user.id) return;
      select.appendChild(el("option", { value: member.id },
        member.display_name + " — " + member.presence + " (" + member.load + "/" + member.capacity + ")"));
    });
    select.value = chosen;
  }

  function loadCanned() {
    return T.api("/api/staff/canned-replies").then(function (body) {
      state.canned = body.replies;
      var select = T.clear($("canned-select"));
      select.appendChild(el("option", { value: "" }, state.canned.length ? "Canned replies…" : "No canned replies"));
      state.canned.forEach(function (reply) {
        select.appendChild(el("option", { value: reply.id, title: reply.text }, reply.title));
      });
    }, function () { /* optional: the console works without them */ });
  }

  function insertCanned() {
    var select = $("canned-select");
    var id = Number(select.value);
    var reply = state.canned.filter(function (r) { return r.id === id; })[0];
    select.value = "";
    if (!reply) return;
    var input = $("reply-input");
    var start = input.selectionStart !== undefined ? input.selectionStart : input.value.length;
    var end = input.selectionEnd !== undefined ? input.selectionEnd : input.value.length;
    var before = input.value.slice(0, start);
    var spacer = before && !/\s$/.test(before) ? " " : "";
    input.value = before + spacer + reply.text + input.value.slice(end);
    var caret = (before + spacer + reply.text).length;
    input.focus();
    input.setSelectionRange(caret, caret);
  }

  // ------------------------------------------------------------------ conversation

  function openConversation(id) {
    if (state.openId !== id) {
      state.openId = id;
      state.context = null;
      $("reply-input").value = "";
      $("close-resolution").value = "";
      $("note-toggle").checked = false;
      applyNoteMode();
    }
    hideError();
    renderQueue();
    renderMine();
    showPane("chat-pane");
    return loadContext(id);
  }

  function scheduleContext() {
    clearTimeout(state.contextTimer);
    state.contextTimer = setTimeout(function () {
      if (state.openId) loadContext(state.openId);
    }, 150);
  }

  function loadContext(id) {
    return T.api("/api/staff/conversations/" + encodeURIComponent(id)).then(function (context) {
      if (state.openId !== id) return;
      state.context = context;
      renderConversation();
      renderContext();
    }, function (error) {
      if (state.openId === id) handleError(error);
    });
  }

  function senderLabel(message) {
    // A bot question held back when the conversation was handed to a person.
    if (message.internal && message.sender === "bot") return "Bot · not sent (handed off)";
    if (message.internal) return "Internal note · " + (message.staff_name || "staff");
    switch (message.sender) {
      case "customer": return "Customer";
      case "bot": return "Bot";
      case "staff": return message.staff_name || message.author || "Staff";
      case "system": return "System";
      default: return message.sender;
    }
  }

  function renderConversation() {
    var context = state.context;
    var conversation = context.conversation;
    var customer = context.customer;
    $("chat-placeholder").hidden = true;
    $("chat").hidden = false;
    // Contact details come only with the conversation (claim it, or be the owner).
    $("chat-title").textContent = !customer ? "Anonymous customer"
      : (customer.name || "Customer (details once you have the chat)");
    var mineNow = conversation.state === "with_staff" &&
      (conversation.assigned_staff_id === state.user.id || state.user.role === "owner");
    var status;
    if (conversation.state === "with_staff") {
      status = conversation.assigned_staff_id === state.user.id
        ? "With you" : "With " + memberName(conversation.assigned_staff_id);
    } else if (conversation.state === "queued") {
      status = "Waiting in the queue";
    } else if (conversation.state === "closed") {
      status = "Closed" + (conversation.resolution ? ": " + conversation.resolution : "");
    } else if (conversation.state === "bot") {
      status = "Back with the bot";
    } else {
      status = conversation.state.replace(/_/g, " ");
    }
    $("chat-status").textContent = status + " · started " + T.formatTime(conversation.created_at);
    $("chat-claim").hidden = conversation.state !== "queued";
    // After handing back to the bot, whoever did it (or the owner) can still wrap up: close
    // with a resolution, which asks the customer for a rating.
    var wrapUp = conversation.state === "bot" && conversation.returned_by != null &&
      (conversation.returned_by === state.user.id || state.user.role === "owner");
    $("composer").hidden = !(mineNow || wrapUp);
    ["composer-tools", "reply-form", "transfer-group", "return-to-bot"].forEach(function (id) {
      $(id).hidden = !mineNow;
    });

    var list = $("transcript");
    var atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    T.clear(list);
    context.transcript.forEach(function (message) {
      var kind = message.internal ? "internal" : message.sender;
      var score = message.sentiment_score;
      list.appendChild(el("li", {
        class: "msg msg-" + kind, testid: "transcript-message",
        dataset: { sender: message.sender, internal: message.internal ? "true" : "false",
          messageId: message.id }
      },
        el("div", { class: "msg-meta" },
          el("span", { class: "msg-who" }, senderLabel(message)),
          el("time", { datetime: message.created_at }, T.formatTime(message.created_at)),
          message.intent ? el("span", { class: "msg-intent", title: "Detected intent" },
            message.intent.replace(/_/g, " ")) : null,
          score !== null && score !== undefined ? el("span", {
            class: "msg-score " + (score < -0.3 ? "neg" : score > 0.3 ? "pos" : "neu"),
            title: "Sentiment score"
          }, (score > 0 ? "+" : "") + score.toFixed(2)) : null),
        el("div", { class: "msg-text" }, message.text)));
    });
    if (atBottom || list.dataset.conversationId !== conversation.id) {
      list.scrollTop = list.scrollHeight;
    }
    list.dataset.conversationId = conversation.id;
  }

  function renderContext() {
    var context = state.context;
    $("context-placeholder").hidden = true;
    $("context").hidden = false;

    var profile = T.clear($("context-profile"));
    var customer = context.customer;
    if (customer) {
      profile.appendChild(el("div", { class: "profile-name" },
        customer.name || "Contact details once you have the chat",
        el("span", { class: "tier tier-" + customer.tier }, customer.tier)));
      profile.appendChild(el("dl", { class: "facts" },
        el("dt", {}, "Lifetime value"), el("dd", {}, T.formatMoney(customer.lifetime_value)),
        el("dt", {}, "Identity"), el("dd", { class: customer.verified ? "ok" : "warn" },
          customer.verified ? "Verified" + (customer.verified_via
            ? " (" + customer.verified_via.replace(/_/g, " ") + ")" : "")
            : "Not verified"),
        el("dt", {}, "E-mail"), el("dd", {}, customer.email || "–"),
        customer.phone ? el("dt", {}, "Phone") : null,
        customer.phone ? el("dd", {}, customer.phone) : null));
    } else {
      profile.appendChild(el("p", { class: "muted" }, "Anonymous customer: not identified yet."));
    }

    var orders = T.clear($("context-orders"));
    var orderRows = (customer && customer.orders) || [];
    if (!orderRows.length) orders.appendChild(el("li", { class: "muted" }, "No orders."));
    orderRows.forEach(function (order) {
      orders.appendChild(el("li", { class: "order" },
        el("span", { class: "order-number" }, "#" + order.number),
        el("span", { class: "status status-" + order.status }, order.status.replace(/_/g, " ")),
        el("span", { class: "order-total" }, T.formatMoney(order.total)),
        el("span", { class: "muted small" }, T.formatTime(order.placed_at))));
    });

    var moodBox = T.clear($("context-mood"));
    var timeline = context.mood_timeline || [];
    var values = timeline.map(function (point) { return point.score; });
    moodBox.appendChild(T.sparkline(values, {
      width: 260, height: 60, min: -1, max: 1, baseline: 0, testid: "mood-sparkline",
      label: "Sentiment of each customer message, from -1 (negative) to +1 (positive)"
    }));
    if (context.mood) {
      moodBox.appendChild(el("p", { class: "mood-line mood-" + moodColour(context.mood.frustration),
        title: context.mood.explanation },
        el("span", { class: "mood-dot", "aria-hidden": "true" }),
        "Frustration " + Math.round(context.mood.frustration * 100) + "%"));
      moodBox.appendChild(el("p", { class: "muted small" }, context.mood.explanation));
    } else {
      moodBox.appendChild(el("p", { class: "muted small" },
        timeline.length ? "" : "No scored messages yet."));
    }

    var reasons = T.clear($("context-reasons"));
    var seen = {};
    (context.escalations || []).forEach(function (escalation) {
      (escalation.reasons || []).forEach(function (reason) {
        if (seen[reason]) return;
        seen[reason] = true;
        reasons.appendChild(el("li", { class: "chip chip-reason" }, reason));
      });
    });
    if (!reasons.firstChild) reasons.appendChild(el("li", { class: "muted" }, "Not escalated."));

    var intents = T.clear($("context-intents"));
    Object.keys(context.intents || {}).forEach(function (name) {
      intents.appendChild(el("li", { class: "chip" }, name.replace(/_/g, " "),
        el("span", { class: "chip-count" }, "×" + context.intents[name])));
    });
    if (!intents.firstChild) intents.appendChild(el("li", { class: "muted" }, "None yet."));

    var summary = T.clear($("context-summary"));
    var data = context.summary || { text: "", points: [] };
    if (!data.points || !data.points.length) {
      summary.appendChild(el("p", { class: "muted" }, "The customer has not written yet."));
    } else {
      var topic = data.text.split(". ")[0];
      summary.appendChild(el("p", { class: "summary-topic" }, topic));
      summary.appendChild(el("ul", { class: "summary-points" }, data.points.map(function (p) {
        return el("li", {}, el("strong", {}, p.label.charAt(0).toUpperCase() + p.label.slice(1) + ": "),
          "“" + p.text + "”");
      })));
    }
  }

  // ------------------------------------------------------------------ actions

  function withButton(button, promise) {
    button.disabled = true;
    return promise.then(function (value) {
      button.disabled = false;
      return value;
    }, function (error) {
      button.disabled = false;
      throw error;
    });
  }

  function conversationPath(id, action) {
    return "/api/staff/conversations/" + encodeURIComponent(id) + "/" + action;
  }

  function claim(id) {
    hideError();
    return T.api(conversationPath(id, "claim"), { method: "POST" }).then(function () {
      refreshQueue();
      return openConversation(id);
    }, function (error) {
      if (error instanceof T.ApiError && error.status === 409) {
        showError("Someone else just took this conversation. " + error.detail);
        refreshQueue();
        if (state.openId === id) loadContext(id);
        return;
      }
      handleError(error);
    });
  }

  function applyNoteMode() {
    var note = $("note-toggle").checked;
    $("reply-form").classList.toggle("note-mode", note);
    $("reply-send").textContent = note ? "Add note" : "Send";
    $("reply-input").placeholder = note
      ? "Write an internal note for colleagues (the customer never sees it)…"
      : "Write a reply… (Enter to send, Shift+Enter for a new line)";
  }

  function sendReply(event) {
    if (event) event.preventDefault();
    var id = state.openId;
    var input = $("reply-input");
    var text = input.value.trim();
    if (!id) return;
    if (!text) {
      showError("Write something first.");
      input.focus();
      return;
    }
    var note = $("note-toggle").checked;
    hideError();
    withButton($("reply-send"), T.api(conversationPath(id, note ? "notes" : "reply"), {
      method: "POST", body: { text: text }
    })).then(function () {
      if (input.value.trim() === text) input.value = "";
      loadContext(id);
    }, function (error) {
      handleError(error); // the text stays in the box: nothing typed is lost
      loadContext(id);
    });
  }

  function transfer() {
    var id = state.openId;
    var to = Number($("transfer-select").value);
    if (!id) return;
    if (!to) {
      showError("Pick a colleague to transfer to.");
      return;
    }
    hideError();
    withButton($("transfer-submit"), T.api(conversationPath(id, "transfer"), {
      method: "POST", body: { to_staff_id: to }
    })).then(function () {
      $("transfer-select").value = "";
      refreshQueue();
      loadTeam();
      loadContext(id);
    }, handleError);
  }

  function returnToBot() {
    var id = state.openId;
    if (!id) return;
    hideError();
    withButton($("return-to-bot"), T.api(conversationPath(id, "return-to-bot"), { method: "POST" }))
      .then(function () {
        refreshQueue();
        loadContext(id);
      }, handleError);
  }

  function closeConversation(event) {
    if (event) event.preventDefault();
    var id = state.openId;
    var input = $("close-resolution");
    var resolution = input.value.trim();
    if (!id) return;
    if (!resolution) {
      showError("Write a short resolution note before closing.");
      input.focus();
      return;
    }
    hideError();
    withButton($("close-submit"), T.api(conversationPath(id, "close"), {
      method: "POST", body: { resolution: resolution }
    })).then(function () {
      input.value = "";
      refreshQueue();
      loadContext(id);
    }, handleError);
  }

  // ------------------------------------------------------------------ wiring

  function wire() {
    $("presence-select").addEventListener("change", function () {
      T.unlockAudio();
      putPresence($("presence-select").value, capacityValue());
    });
    $("capacity-input").addEventListener("change", function () {
      var capacity = capacityValue();
      if (capacity === null) {
        showError("Capacity must be a number of chats from 0 to 100.");
        return;
      }
      $("capacity-input").value = capacity;
      putPresence($("presence-select").value, capacity);
    });
    $("logout").addEventListener("click", function () {
      T.logout().then(function () { showLogin(); }, function () { showLogin(); });
    });
    $("action-error-close").addEventListener("click", hideError);
    $("notification-close").addEventListener("click", function () {
      $("notification").hidden = true;
    });
    $("notification-text").addEventListener("click", function () {
      var id = $("notification").dataset.conversationId;
      if (id) openConversation(id);
    });
    $("chat-claim").addEventListener("click", function () {
      if (state.openId) claim(state.openId);
    });
    $("reply-form").addEventListener("submit", sendReply);
    $("reply-input").addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) sendReply(event);
    });
    $("note-toggle").addEventListener("change", applyNoteMode);
    $("canned-select").addEventListener("change", insertCanned);
    $("transfer-submit").addEventListener("click", transfer);
    $("return-to-bot").addEventListener("click", returnToBot);
    $("close-form").addEventListener("submit", closeConversation);
    Array.prototype.forEach.call(document.querySelectorAll("[role=tablist] [role=tab]"),
      function (tab) {
        tab.addEventListener("click", function () { activateTab(tab); });
        tab.addEventListener("keydown", onTabKey);
      });
    document.addEventListener("click", T.unlockAudio, { once: true });
  }

  function boot() {
    wire();
    T.me().then(function (user) {
      if (user) start(user);
      else showLogin();
    }, function (error) {
      showLogin(T.errorText(error));
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
})();
