/*
 * Tandem chat widget. Embed with one tag:
 *
 *   <script src="https://gateway.example/widget.js" data-business="Shop name"
 *           data-color="#0f766e" data-position="right" data-greeting="Hi! ..." async></script>
 *
 * Optional: data-gateway (defaults to this script's origin), and a signed identity from the
 * shop's backend: data-customer-id, data-expires-at, data-signature.
 *
 * Everything renders inside an open Shadow DOM so the host site's CSS cannot reach it.
 * Data is only ever rendered with textContent / createElement, never as HTML.
 */
(function () {
  "use strict";

  if (window.__tandemWidgetLoaded) return; // a second copy of the tag must not add a second widget
  window.__tandemWidgetLoaded = true;

  // ------------------------------------------------------------------ configuration

  var script = document.currentScript;
  if (!script) {
    var candidates = document.querySelectorAll("script[src*='widget.js']");
    script = candidates[candidates.length - 1] || null;
  }
  var data = (script && script.dataset) || {};

  function gatewayOrigin() {
    var raw = data.gateway || (script && script.src) || location.href;
    try {
      return new URL(raw, location.href).origin;
    } catch (e) {
      return location.origin;
    }
  }

  var GATEWAY = gatewayOrigin();
  var WS_BASE = GATEWAY.replace(/^http/, "ws");
  var STORE_KEY = "tandem-widget:" + GATEWAY;
  var DEFAULT_COLOR = "#0f766e";
  var COLOR = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(data.color || "") ? data.color : DEFAULT_COLOR;
  var POSITION = data.position === "left" ? "left" : "right";
  var IDENTITY =
    data.customerId && data.expiresAt && data.signature
      ? { customer_id: data.customerId, expires_at: data.expiresAt, signature: data.signature }
      : null;
  var HUMAN_PAYLOAD = "/request_human";
  var MAX_BACKOFF_MS = 30000;

  // ------------------------------------------------------------------ persistent state

  function readStore() {
    try {
      return JSON.parse(localStorage.getItem(STORE_KEY) || "{}") || {};
    } catch (e) {
      return {};
    }
  }

  var stored = readStore();
  var state = {
    // The conversation's secret token travels with its id (header / first socket frame).
    conversationId: (stored.conversationToken && stored.conversationId) || null,
    conversationToken: stored.conversationToken || null,
    identity: stored.identity || null, // which signed customer the conversation belongs to
    open: !!stored.open,
    outbox: Array.isArray(stored.outbox) ? stored.outbox : [],
    convState: null,
    csat: null,
    lastId: 0,
    business: { name: data.business || "", assistant: "", disclosure: "", human: "" },
    staffName: "",
    unread: 0,
  };

  // A stored conversation of another (or no) signed customer is not this visitor's.
  if (state.conversationId && (state.identity || "") !== ((IDENTITY && IDENTITY.customer_id) || "")) {
    state.conversationId = null;
    state.conversationToken = null;
    state.outbox = [];
  }

  function save() {
    try {
      localStorage.setItem(
        STORE_KEY,
        JSON.stringify({
          conversationId: state.conversationId,
          conversationToken: state.conversationToken,
          identity: state.identity,
          open: state.open,
          outbox: state.outbox,
        })
      );
    } catch (e) {
      /* storage full or blocked: the widget still works for this page view */
    }
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    });
    return [hex.slice(0, 4), hex.slice(4, 6), hex.slice(6, 8), hex.slice(8, 10), hex.slice(10)]
      .map(function (part) {
        return part.join("");
      })
      .join("-");
  }

  // ------------------------------------------------------------------ DOM helpers

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        var value = attrs[key];
        if (value === null || value === undefined || value === false) return;
        if (key === "text") node.textContent = value;
        else if (key === "className") node.className = value;
        else node.setAttribute(key, value === true ? "" : String(value));
      });
    }
    (children || []).forEach(function (child) {
      if (child) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  var SVG_NS = "http://www.w3.org/2000/svg";
  function icon(pathData, size) {
    var svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", String(size || 20));
    svg.setAttribute("height", String(size || 20));
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", pathData);
    path.setAttribute("fill", "currentColor");
    svg.appendChild(path);
    return svg;
  }

  var ICON_CHAT =
    "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2zm3 6v2h2v-2H7zm4 0v2h2v-2h-2zm4 0v2h2v-2h-2z";
  var ICON_CLOSE =
    "M18.3 5.71 12 12l6.3 6.29-1.41 1.42L10.59 13.4 4.3 19.71 2.89 18.3 9.17 12 2.89 5.71 4.3 4.29l6.29 6.3 6.3-6.3z";
  var ICON_SEND = "M3.4 20.4 21.85 12 3.4 3.6 3.39 10.1 16.5 12 3.39 13.9z";
  var ICON_PERSON =
    "M12 12a4.5 4.5 0 1 0 0-9 4.5 4.5 0 0 0 0 9zm0 2.25c-3 0-9 1.5-9 4.5V21h18v-2.25c0-3-6-4.5-9-4.5z";

  // Plain text with http(s) links made clickable; anything else stays text.
  var URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/gi;
  function linkified(text) {
    var fragment = document.createDocumentFragment();
    var last = 0;
    var match;
    URL_RE.lastIndex = 0;
    while ((match = URL_RE.exec(text)) !== null) {
      var raw = match[0].replace(/[.,;:!?)\]}]+$/, "");
      var start = match.index;
      URL_RE.lastIndex = start + raw.length;
      var safe = null;
      try {
        var parsed = new URL(raw);
        if (parsed.protocol === "http:" || parsed.protocol === "https:") safe = parsed.href;
      } catch (e) {
        safe = null;
      }
      if (!safe) continue;
      fragment.appendChild(document.createTextNode(text.slice(last, start)));
      fragment.appendChild(
        el("a", { href: safe, target: "_blank", rel: "noopener noreferrer", text: raw })
      );
      last = start + raw.length;
    }
    fragment.appendChild(document.createTextNode(text.slice(last)));
    return fragment;
  }

  function contrastText(hex) {
    var h = hex.slice(1);
    if (h.length === 3) h = h.replace(/./g, "$&$&");
    var rgb = [0, 2, 4].map(function (i) {
      var c = parseInt(h.slice(i, i + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    var luminance = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
    return luminance > 0.4 ? "#111827" : "#ffffff";
  }

  // ------------------------------------------------------------------ styles

  var CSS = [
    ":host{all:initial}",
    "*,*::before,*::after{box-sizing:border-box}",
    ".root{--accent:" + COLOR + ";--on-accent:" + contrastText(COLOR) + ";",
    "font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;",
    "color:#1f2937;-webkit-font-smoothing:antialiased}",
    "button,textarea,input{font:inherit;color:inherit}",
    ".sr-only{position:absolute!important;width:1px;height:1px;padding:0;margin:-1px;",
    "overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}",
    ":focus-visible{outline:3px solid #2563eb;outline-offset:2px}",
    // launcher
    ".launcher{position:fixed;bottom:20px;" + POSITION + ":20px;z-index:2147483000;",
    "width:60px;height:60px;border-radius:50%;border:0;cursor:pointer;",
    "background:var(--accent);color:var(--on-accent);display:flex;align-items:center;",
    "justify-content:center;box-shadow:0 8px 24px rgba(0,0,0,.22);transition:transform .15s}",
    ".launcher:hover{transform:scale(1.06)}",
    ".launcher:focus-visible{outline-offset:4px}",
    ".badge{position:absolute;top:-2px;right:-2px;min-width:20px;height:20px;padding:0 6px;",
    "border-radius:10px;background:#dc2626;color:#fff;font-size:12px;font-weight:700;",
    "line-height:20px;text-align:center}",
    ".badge[hidden]{display:none}",
    // panel
    ".panel{position:fixed;bottom:92px;" + POSITION + ":20px;z-index:2147483001;",
    "width:380px;max-width:calc(100vw - 40px);height:600px;max-height:calc(100vh - 112px);",
    "display:flex;flex-direction:column;background:#fff;border-radius:16px;overflow:hidden;",
    "box-shadow:0 16px 48px rgba(0,0,0,.24);border:1px solid rgba(0,0,0,.06)}",
    ".panel[hidden]{display:none}",
    "header{display:flex;align-items:center;gap:12px;padding:14px 14px 14px 16px;",
    "background:var(--accent);color:var(--on-accent)}",
    ".avatar{flex:none;width:38px;height:38px;border-radius:50%;display:flex;align-items:center;",
    "justify-content:center;font-weight:700;background:rgba(255,255,255,.22)}",
    ".titles{flex:1;min-width:0}",
    "h2{margin:0;font-size:16px;font-weight:650;white-space:nowrap;overflow:hidden;",
    "text-overflow:ellipsis}",
    ".subtitle{margin:0;font-size:12.5px;opacity:.9}",
    ".icon-btn{flex:none;width:36px;height:36px;border-radius:8px;border:0;cursor:pointer;",
    "background:transparent;color:inherit;display:flex;align-items:center;justify-content:center}",
    ".icon-btn:hover{background:rgba(255,255,255,.18)}",
    ".icon-btn:focus-visible{outline-color:var(--on-accent)}",
    ".disclosure{margin:0;padding:8px 16px;font-size:12.5px;color:#374151;background:#f3f4f6;",
    "border-bottom:1px solid #e5e7eb}",
    ".connection{margin:0;padding:6px 16px;font-size:12.5px;background:#fef3c7;color:#92400e}",
    ".connection[data-state=open]{display:none}",
    ".queue{display:flex;gap:10px;align-items:center;margin:0;padding:10px 16px;",
    "background:#eff6ff;color:#1e3a8a;font-size:13.5px;border-bottom:1px solid #dbeafe}",
    ".queue[hidden]{display:none}",
    ".queue .pos{flex:none;min-width:34px;height:34px;border-radius:17px;background:#1d4ed8;",
    "color:#fff;font-weight:700;display:flex;align-items:center;justify-content:center}",
    ".log{flex:1;overflow-y:auto;padding:16px;display:flex;flex-direction:column;gap:8px;",
    "background:#fafafa;overscroll-behavior:contain}",
    ".msg{max-width:85%;padding:9px 13px;border-radius:16px;white-space:pre-wrap;",
    "overflow-wrap:anywhere;background:#fff;border:1px solid #e5e7eb;align-self:flex-start}",
    ".msg a{color:inherit;text-decoration:underline}",
    ".msg[data-sender=customer]{align-self:flex-end;background:var(--accent);",
    "color:var(--on-accent);border-color:transparent;border-bottom-right-radius:4px}",
    ".msg[data-sender=bot],.msg[data-sender=staff]{border-bottom-left-radius:4px}",
    ".msg[data-sender=staff]{background:#ecfdf5;border-color:#a7f3d0}",
    ".msg[data-sender=system]{align-self:center;max-width:92%;background:#fffbeb;",
    "border-color:#fde68a;font-size:13.5px;text-align:center}",
    ".msg.notice{align-self:center;background:#f0fdf4;border-color:#bbf7d0;text-align:center;",
    "font-size:13.5px}",
    ".msg[data-pending=true]{opacity:.7}",
    ".author{display:block;font-size:12px;font-weight:650;color:#047857;margin-bottom:2px}",
    ".status{display:block;font-size:11.5px;opacity:.85;margin-top:3px;text-align:right}",
    ".greeting{align-self:flex-start;max-width:85%;padding:9px 13px;border-radius:16px;",
    "border-bottom-left-radius:4px;background:#fff;border:1px solid #e5e7eb}",
    ".quick{display:flex;flex-wrap:wrap;gap:6px;align-self:flex-start;max-width:92%}",
    ".chip{border:1.5px solid var(--accent);background:#fff;color:var(--accent);cursor:pointer;",
    "border-radius:999px;padding:5px 12px;font-size:13.5px;font-weight:550}",
    ".chip:hover{background:var(--accent);color:var(--on-accent)}",
    ".card{align-self:stretch;background:#fff;border:1px solid #e5e7eb;border-radius:12px;",
    "padding:12px;display:flex;flex-direction:column;gap:8px}",
    ".card label,.card .label{font-size:13px;font-weight:600}",
    ".card input,.card textarea{width:100%;padding:8px 10px;border:1px solid #d1d5db;",
    "border-radius:8px;background:#fff}",
    ".card textarea{resize:vertical;min-height:54px}",
    ".scores{display:flex;gap:6px}",
    ".score{flex:1;height:40px;border-radius:8px;border:1.5px solid #d1d5db;background:#fff;",
    "cursor:pointer;font-weight:700}",
    ".score:hover{border-color:var(--accent);color:var(--accent)}",
    ".scale{display:flex;justify-content:space-between;font-size:11.5px;color:#6b7280}",
    ".primary{align-self:flex-end;border:0;border-radius:8px;padding:8px 14px;cursor:pointer;",
    "background:var(--accent);color:var(--on-accent);font-weight:600}",
    ".thanks{font-weight:600;color:#047857;margin:0}",
    ".typing{display:flex;align-items:center;gap:8px;padding:4px 16px 6px;font-size:12.5px;",
    "color:#6b7280;background:#fafafa}",
    ".typing[hidden]{display:none}",
    ".dots{display:inline-flex;gap:3px}",
    ".dots i{width:6px;height:6px;border-radius:50%;background:#9ca3af;",
    "animation:tandem-blink 1.2s infinite}",
    ".dots i:nth-child(2){animation-delay:.2s}.dots i:nth-child(3){animation-delay:.4s}",
    "@keyframes tandem-blink{0%,80%,100%{opacity:.3}40%{opacity:1}}",
    "@media (prefers-reduced-motion:reduce){.dots i{animation:none}.launcher{transition:none}}",
    ".error{margin:0;padding:6px 16px;font-size:13px;color:#b91c1c;background:#fef2f2}",
    ".error:empty{display:none}",
    ".actions{display:flex;align-items:center;gap:8px;padding:8px 12px 0;background:#fff;",
    "border-top:1px solid #e5e7eb}",
    ".human{display:inline-flex;align-items:center;gap:6px;border:1.5px solid #d1d5db;",
    "background:#fff;border-radius:999px;padding:4px 12px 4px 8px;cursor:pointer;",
    "font-size:13px;font-weight:600;color:#374151}",
    ".human:hover{border-color:var(--accent);color:var(--accent)}",
    ".composer{display:flex;align-items:flex-end;gap:8px;padding:8px 12px 12px;background:#fff}",
    ".composer textarea{flex:1;resize:none;min-height:42px;max-height:120px;padding:10px 12px;",
    "border:1px solid #d1d5db;border-radius:12px;background:#fff;line-height:1.35}",
    ".composer textarea:focus-visible{outline:2px solid var(--accent);outline-offset:0;",
    "border-color:var(--accent)}",
    ".send{flex:none;width:42px;height:42px;border-radius:12px;border:0;cursor:pointer;",
    "background:var(--accent);color:var(--on-accent);display:flex;align-items:center;",
    "justify-content:center}",
    ".powered{margin-left:auto;font-size:11px;color:#9ca3af}",
    // phones: the panel takes the whole screen
    "@media (max-width:480px){",
    ".panel{inset:0;width:100%;max-width:none;height:100%;max-height:none;border-radius:0;",
    "border:0}",
    ".root.is-open .launcher{display:none}",
    "}",
  ].join("");

  // ------------------------------------------------------------------ build the widget

  var host = document.createElement("div");
  host.id = "tandem-widget";
  // The host page's CSS must not hide or restyle the widget's anchor either.
  host.style.setProperty("all", "initial", "important");
  host.style.setProperty("display", "block", "important");
  var shadow = host.attachShadow({ mode: "open" });
  var style = null;
  try {
    // A constructed stylesheet is not an inline <style>, so a host page's strict CSP
    // (style-src without 'unsafe-inline') does not block it.
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    shadow.adoptedStyleSheets = [sheet];
  } catch (e) {
    style = document.createElement("style");
    style.textContent = CSS;
  }

  var badge = el("span", { className: "badge", hidden: true, "aria-hidden": "true" });
  var launcher = el(
    "button",
    {
      type: "button",
      className: "launcher",
      "data-testid": "tandem-launcher",
      "aria-label": "Open chat",
      "aria-expanded": "false",
      "aria-controls": "tandem-panel",
    },
    [icon(ICON_CHAT, 28), badge]
  );

  var titleEl = el("h2", { id: "tandem-title", text: state.business.name || "Chat" });
  var subtitleEl = el("p", { className: "subtitle", text: "Virtual assistant" });
  var avatarEl = el("div", { className: "avatar", "aria-hidden": "true", text: "" });
  var closeBtn = el(
    "button",
    {
      type: "button",
      className: "icon-btn",
      "data-testid": "tandem-close",
      "aria-label": "Close chat",
    },
    [icon(ICON_CLOSE, 20)]
  );
  var disclosureEl = el("p", {
    id: "tandem-disclosure",
    className: "disclosure",
    "data-testid": "tandem-disclosure",
    text: "You're chatting with a virtual assistant. You can ask for a person at any time.",
  });
  var connectionEl = el("p", {
    className: "connection",
    "data-testid": "tandem-connection",
    "data-state": "connecting",
    role: "status",
    text: "Connecting\u2026",
  });
  var queueEl = el("div", {
    className: "queue",
    "data-testid": "tandem-queue",
    role: "status",
    hidden: true,
  });
  var logEl = el("div", {
    className: "log",
    role: "log",
    "aria-live": "polite",
    "aria-label": "Conversation",
    "data-testid": "tandem-messages",
    tabindex: "0",
  });
  var typingLabel = el("span", { text: "Typing\u2026" });
  var typingEl = el(
    "div",
    { className: "typing", "data-testid": "tandem-typing", hidden: true, "aria-hidden": "true" },
    [el("span", { className: "dots" }, [el("i"), el("i"), el("i")]), typingLabel]
  );
  var announcer = el("div", { className: "sr-only", "aria-live": "polite", role: "status" });
  var errorEl = el("p", { className: "error", role: "alert", id: "tandem-error" });
  var humanLabel = el("span", { text: "Talk to a person" });
  var humanBtn = el(
    "button",
    { type: "button", className: "human", "data-testid": "tandem-human" },
    [icon(ICON_PERSON, 16), humanLabel]
  );
  var inputEl = el("textarea", {
    id: "tandem-input",
    "data-testid": "tandem-input",
    rows: "1",
    placeholder: "Type your message\u2026",
    "aria-describedby": "tandem-error",
    autocomplete: "off",
  });
  var sendBtn = el(
    "button",
    { type: "submit", className: "send", "data-testid": "tandem-send", "aria-label": "Send message" },
    [icon(ICON_SEND, 20)]
  );
  var composer = el("form", { className: "composer", novalidate: true }, [
    el("label", { for: "tandem-input", className: "sr-only", text: "Your message" }),
    inputEl,
    sendBtn,
  ]);
  var panel = el(
    "section",
    {
      id: "tandem-panel",
      className: "panel",
      role: "dialog",
      "aria-modal": "false",
      "aria-labelledby": "tandem-title",
      "aria-describedby": "tandem-disclosure",
      "data-testid": "tandem-panel",
      hidden: true,
    },
    [
      el("header", null, [
        avatarEl,
        el("div", { className: "titles" }, [titleEl, subtitleEl]),
        closeBtn,
      ]),
      disclosureEl,
      connectionEl,
      queueEl,
      logEl,
      typingEl,
      errorEl,
      el("div", { className: "actions" }, [
        humanBtn,
        el("span", { className: "powered", text: "Powered by Tandem" }),
      ]),
      composer,
      announcer,
    ]
  );
  var root = el("div", { className: "root" }, [launcher, panel]);
  if (style) shadow.appendChild(style);
  shadow.appendChild(root);

  var greeting = data.greeting || "";
  if (greeting) {
    logEl.appendChild(el("div", { className: "greeting", "data-testid": "tandem-greeting", text: greeting }));
  }

  function mount() {
    document.body.appendChild(host);
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);

  // ------------------------------------------------------------------ header / business

  function applyBusiness() {
    var b = state.business;
    titleEl.textContent = b.name || "Chat";
    avatarEl.textContent = (b.name || "?").trim().charAt(0).toUpperCase();
    if (b.disclosure) disclosureEl.textContent = b.disclosure;
    if (b.human) humanLabel.textContent = b.human;
    humanBtn.setAttribute("aria-label", (b.human || "Talk to a person") + " from our team");
    launcher.setAttribute("aria-label", "Open chat with " + (b.name || "us"));
    applyHeader();
  }

  function applyHeader() {
    var assistant = state.business.assistant;
    if (state.convState === "with_staff") {
      subtitleEl.textContent = state.staffName
        ? "You're chatting with " + state.staffName
        : "You're chatting with our team";
      typingLabel.textContent = (state.staffName || "Our team") + " is typing\u2026";
    } else {
      subtitleEl.textContent = assistant ? assistant + " \u00b7 virtual assistant" : "Virtual assistant";
      typingLabel.textContent = (assistant || "The assistant") + " is typing\u2026";
    }
  }

  // ------------------------------------------------------------------ HTTP

  function api(path, options) {
    options = options || {};
    var init = { method: options.method || "GET", headers: {}, credentials: "omit" };
    if (state.conversationToken && path.indexOf("/api/conversations/") === 0) {
      init.headers["X-Conversation-Token"] = state.conversationToken;
    }
    if (options.body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    return fetch(GATEWAY + path, init).then(function (response) {
      return response
        .json()
        .catch(function () {
          return {};
        })
        .then(function (body) {
          if (!response.ok) {
            var error = new Error(
              typeof body.detail === "string" ? body.detail : "Something went wrong (" + response.status + ")."
            );
            error.status = response.status;
            throw error;
          }
          return body;
        });
    });
  }

  // ------------------------------------------------------------------ rendering

  var byId = new Map(); // message id -> bubble
  var pending = new Map(); // client_message_id -> bubble

  function scrollDown() {
    logEl.scrollTop = logEl.scrollHeight;
  }

  function clearTransient() {
    // quick replies and forms belong to the latest question only
    Array.prototype.forEach.call(logEl.querySelectorAll(".quick,.offline-form"), function (n) {
      n.remove();
    });
  }

  function bubble(sender, text, attrs) {
    var node = el("div", {
      className: "msg",
      "data-testid": "tandem-message",
      "data-sender": sender,
    });
    Object.keys(attrs || {}).forEach(function (key) {
      if (key !== "author" && attrs[key] !== null && attrs[key] !== undefined) {
        node.setAttribute(key, attrs[key]);
      }
    });
    if (attrs && attrs.author) {
      node.appendChild(el("span", { className: "author", text: attrs.author }));
    }
    var body = el("span", { className: "text" });
    if (sender === "customer") body.textContent = text;
    else body.appendChild(linkified(text));
    node.appendChild(body);
    return node;
  }

  function staffNameOf(message) {
    if (message.author) return message.author;
    var match = /^(.+?) from (the |our )/.exec(message.text || "");
    return match ? match[1] : "";
  }

  // Render one stored message (from history, the socket or a POST answer) once.
  function render(message, live) {
    if (!message || typeof message.id !== "number") return;
    if (message.id > state.lastId) state.lastId = message.id;
    if (byId.has(message.id)) return;
    var sender = ["customer", "bot", "staff", "system"].indexOf(message.sender) >= 0 ? message.sender : "system";
    var text = String(message.text || "");
    var node;
    if (sender === "customer") {
      clearTransient();
      var cid = message.client_message_id;
      node = cid ? pending.get(cid) : null;
      if (node) {
        pending.delete(cid);
        node.setAttribute("data-message-id", String(message.id));
        node.removeAttribute("data-pending");
        var status = node.querySelector(".status");
        if (status) status.remove();
        dropFromOutbox(cid);
      }
      if (state.convState === "closed") setConvState("bot");
    } else {
      hideTyping();
      // Any newer word from the server supersedes an unanswered contact question.
      Array.prototype.forEach.call(logEl.querySelectorAll(".offline-form"), function (n) {
        n.remove();
      });
    }
    if (!node) {
      node = bubble(sender, text, {
        "data-message-id": String(message.id),
        author: sender === "staff" ? message.author || "Our team" : null,
      });
      logEl.appendChild(node);
    }
    byId.set(message.id, node);

    applyKind(message, node, live);
    if (sender !== "customer" && Array.isArray(message.buttons) && message.buttons.length) {
      logEl.appendChild(quickReplies(message.buttons));
    }
    if (live && sender !== "customer") {
      announcer.textContent = senderLabel(message) + ": " + text;
      if (!state.open) {
        state.unread += 1;
        badge.textContent = String(state.unread);
        badge.hidden = false;
        launcher.setAttribute(
          "aria-label",
          "Open chat with " + (state.business.name || "us") + " (" + state.unread + " new)"
        );
      }
    }
    scrollDown();
  }

  function senderLabel(message) {
    if (message.sender === "staff") return message.author || "Our team";
    if (message.sender === "bot") return state.business.assistant || "Assistant";
    return "Notice";
  }

  function applyKind(message, node, live) {
    switch (message.kind) {
      case "queue_position":
        setConvState("queued");
        showQueue(message.text, null);
        break;
      case "staff_joined":
      case "transferred":
        state.staffName = staffNameOf(message);
        setConvState("with_staff");
        node.classList.add("notice");
        break;
      case "returned_to_bot":
        state.staffName = "";
        setConvState("bot");
        node.classList.add("notice");
        break;
      case "offline_contact":
        setConvState("offline_ticket");
        if (/\?\s*$/.test(message.text || "")) logEl.appendChild(offlineForm(message));
        break;
      case "csat_request":
        setConvState("closed");
        if (!live && state.csat) logEl.appendChild(csatThanks());
        else logEl.appendChild(csatCard());
        break;
      default:
        if (message.sender === "staff" && message.author) {
          state.staffName = message.author;
          applyHeader();
        }
    }
  }

  function setConvState(value) {
    state.convState = value;
    if (value !== "queued") queueEl.hidden = true;
    if (value !== "closed") {
      Array.prototype.forEach.call(logEl.querySelectorAll(".csat-card"), function (n) {
        n.remove();
      });
    }
    applyHeader();
  }

  function showQueue(text, position) {
    if (position === null || position === undefined) {
      var match = /(\d+)/.exec(text || "");
      position = match ? Number(match[1]) : null;
    }
    queueEl.textContent = "";
    if (position !== null) {
      queueEl.setAttribute("data-position", String(position));
      queueEl.appendChild(el("span", { className: "pos", "aria-hidden": "true", text: "#" + position }));
    }
    queueEl.appendChild(el("span", { text: text || "Waiting for a person from our team\u2026" }));
    queueEl.hidden = false;
  }

  function waitText(seconds) {
    if (seconds < 60) return "under a minute";
    return Math.ceil(seconds / 60) + " minutes";
  }

  function quickReplies(buttons) {
    var row = el("div", { className: "quick", role: "group", "aria-label": "Suggested replies" });
    buttons.forEach(function (button) {
      var title = String(button.title || button.payload || "");
      if (!title) return;
      var chip = el("button", {
        type: "button",
        className: "chip",
        "data-testid": "tandem-quick-reply",
        text: title,
      });
      chip.addEventListener("click", function () {
        var payload = String(button.payload || "");
        // Rasa intents ("/affirm") travel as payload; plain-word payloads as the text.
        if (payload.charAt(0) === "/") send(title, payload);
        else send(payload || title, null);
      });
      row.appendChild(chip);
    });
    return row;
  }

  function offlineForm(message) {
    var asksContact = /e-?mail|phone/i.test(message.text || "");
    var fieldId = "tandem-offline-" + message.id;
    var input = el("input", {
      id: fieldId,
      type: "text",
      autocomplete: asksContact ? "email" : "name",
      inputmode: asksContact ? "email" : null,
      required: true,
    });
    var form = el(
      "form",
      {
        className: "card offline-form",
        "data-testid": "tandem-offline-form",
        "aria-label": "Contact details for our team",
        novalidate: true,
      },
      [
        el("label", { for: fieldId, text: asksContact ? "E-mail address or phone number" : "Your name" }),
        input,
        el("button", { type: "submit", className: "primary", text: "Send" }),
      ]
    );
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var value = input.value.trim();
      if (!value) {
        input.focus();
        return;
      }
      send(value, null);
    });
    return form;
  }

  function csatCard() {
    var commentId = "tandem-csat-comment";
    var comment = el("textarea", { id: commentId, maxlength: "2000", rows: "2" });
    var error = el("p", { className: "error", role: "alert" });
    var scores = el("div", { className: "scores", role: "group", "aria-label": "Rate this chat" });
    var labels = ["poor", "fair", "good", "very good", "excellent"];
    for (var i = 1; i <= 5; i++) {
      (function (score) {
        var button = el("button", {
          type: "button",
          className: "score",
          "data-testid": "tandem-csat-" + score,
          "aria-label": "Rate " + score + " out of 5 (" + labels[score - 1] + ")",
          text: String(score),
        });
        button.addEventListener("click", function () {
          rate(score, comment.value, card, error);
        });
        scores.appendChild(button);
      })(i);
    }
    var card = el("div", { className: "card csat-card", "data-testid": "tandem-csat" }, [
      el("span", { className: "label", text: "How did we do?" }),
      scores,
      el("div", { className: "scale", "aria-hidden": "true" }, [
        el("span", { text: "1 poor" }),
        el("span", { text: "5 excellent" }),
      ]),
      el("label", { for: commentId, text: "Add a comment (optional), then pick a rating" }),
      comment,
      error,
    ]);
    return card;
  }

  function csatThanks() {
    return el("div", { className: "card csat-card", "data-testid": "tandem-csat-thanks" }, [
      el("p", { className: "thanks", text: "Thank you for your feedback!" }),
    ]);
  }

  function rate(score, comment, card, error) {
    error.textContent = "";
    api("/api/conversations/" + encodeURIComponent(state.conversationId) + "/csat", {
      method: "POST",
      body: { score: score, comment: comment.trim() || null },
    })
      .then(function () {
        state.csat = score;
        var thanks = csatThanks();
        card.replaceWith(thanks);
        thanks.setAttribute("tabindex", "-1");
        thanks.focus();
        announcer.textContent = "Thank you for your feedback!";
      })
      .catch(function (e) {
        error.textContent = e.message;
      });
  }

  function showTyping() {
    typingEl.hidden = false;
    clearTimeout(showTyping.timer);
    showTyping.timer = setTimeout(hideTyping, 30000); // never spin forever
  }
  function hideTyping() {
    typingEl.hidden = true;
  }

  // ------------------------------------------------------------------ connection status

  function setConnection(kind) {
    var labels = {
      connecting: "Connecting\u2026",
      open: "Connected",
      reconnecting: "Reconnecting\u2026",
      offline: "You're offline. Reconnecting\u2026 Messages will be sent when you're back.",
    };
    connectionEl.setAttribute("data-state", kind);
    connectionEl.textContent = labels[kind];
  }

  // ------------------------------------------------------------------ conversation lifecycle

  var booting = null;

  function createConversation() {
    var body = IDENTITY ? IDENTITY : {};
    return api("/api/conversations", { method: "POST", body: body })
      .catch(function (e) {
        if (IDENTITY && (e.status === 401 || e.status === 422)) {
          // The shop's signature was not accepted: chat anonymously rather than not at all.
          if (window.console) console.warn("Tandem: identity not accepted:", e.message);
          return api("/api/conversations", { method: "POST", body: {} });
        }
        throw e;
      })
      .then(function (conversation) {
        state.conversationId = conversation.id;
        state.conversationToken = conversation.token;
        state.identity = (IDENTITY && IDENTITY.customer_id) || null;
        state.convState = conversation.state;
        state.csat = conversation.csat;
        save();
        return conversation;
      });
  }

  function resetConversation() {
    state.conversationId = null;
    state.conversationToken = null;
    state.lastId = 0;
    byId.clear();
    Array.prototype.forEach.call(logEl.querySelectorAll(".msg:not([data-pending]),.quick,.card"), function (n) {
      n.remove();
    });
    queueEl.hidden = true;
    save();
  }

  // Load (or start) the conversation once; later calls share the same promise.
  function ensureConversation() {
    if (booting) return booting;
    booting = (function () {
      if (!state.conversationId) return createConversation().then(afterLoad);
      var id = encodeURIComponent(state.conversationId);
      return api("/api/conversations/" + id)
        .then(function (conversation) {
          state.convState = conversation.state;
          state.csat = conversation.csat;
          return api("/api/conversations/" + id + "/messages").then(function (body) {
            body.messages.forEach(function (m) {
              render(m, false);
            });
            // The replay guessed the state from message kinds; the server knows it.
            setConvState(conversation.state);
          });
        })
        .catch(function (e) {
          if (e.status === 404 || e.status === 401) {
            // Deleted or from another install: start afresh without bothering the customer.
            resetConversation();
            return createConversation();
          }
          throw e;
        })
        .then(afterLoad);
    })().catch(function (e) {
      booting = null;
      throw e;
    });
    return booting;
  }

  function afterLoad() {
    // Messages typed earlier (before a reload or while offline) are shown as pending.
    state.outbox.forEach(function (item) {
      if (!pending.has(item.client_message_id)) showPending(item);
    });
    connect();
    flush();
  }

  // ------------------------------------------------------------------ WebSocket

  var socket = null;
  var attempt = 0;
  var reconnectTimer = null;
  var pingTimer = null;

  function connect() {
    if (!state.conversationId || socket) return;
    clearTimeout(reconnectTimer);
    if (navigator.onLine === false) {
      setConnection("offline");
      return;
    }
    setConnection(attempt === 0 ? "connecting" : "reconnecting");
    var ws;
    try {
      ws = new WebSocket(WS_BASE + "/ws/chat/" + encodeURIComponent(state.conversationId));
    } catch (e) {
      scheduleReconnect();
      return;
    }
    socket = ws;
    ws.onopen = function () {
      if (socket !== ws) return;
      // The first frame proves this visitor holds the conversation (never in the URL).
      ws.send(JSON.stringify({ type: "auth", token: state.conversationToken }));
      attempt = 0;
      setConnection("open");
      clearInterval(pingTimer);
      pingTimer = setInterval(function () {
        if (ws.readyState === WebSocket.OPEN) ws.send('{"type":"ping"}');
      }, 25000);
      catchUp();
      flush();
    };
    ws.onmessage = function (event) {
      if (socket !== ws) return;
      var frame;
      try {
        frame = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      onFrame(frame);
    };
    ws.onclose = function (event) {
      if (socket !== ws) return;
      socket = null;
      clearInterval(pingTimer);
      if (event.code === 4404 || event.code === 4401) {
        // The conversation is gone (or its token is): start a new one quietly.
        resetConversation();
        booting = null;
        ensureConversation().catch(scheduleReconnect);
        return;
      }
      if (event.code === 4403) {
        setConnection("reconnecting");
        showError("This website is not allowed to use the chat.");
        return;
      }
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    clearTimeout(reconnectTimer);
    if (navigator.onLine === false) {
      setConnection("offline");
      return; // the "online" event reconnects
    }
    setConnection("reconnecting");
    var base = Math.min(MAX_BACKOFF_MS, 1000 * Math.pow(2, attempt));
    var delay = base / 2 + Math.random() * (base / 2); // "equal jitter"
    attempt += 1;
    reconnectTimer = setTimeout(connect, delay);
  }

  function dropSocket() {
    var ws = socket;
    socket = null;
    clearInterval(pingTimer);
    if (ws) {
      try {
        ws.close();
      } catch (e) {
        /* already closing */
      }
    }
  }

  function onFrame(frame) {
    if (frame.type === "message") render(frame.message, true);
    else if (frame.type === "ack" && frame.message) render(frame.message, false);
    else if (frame.type === "typing") {
      if (frame.on) showTyping();
      else hideTyping();
    } else if (frame.type === "queue") {
      setConvState("queued");
      var wait = typeof frame.wait_seconds === "number" ? waitText(frame.wait_seconds) : "";
      showQueue(
        frame.text || "You're number " + frame.position + " in line (about " + wait + ").",
        frame.position
      );
    } else if (frame.type === "error" && frame.detail) {
      showError(frame.detail);
    }
  }

  // Whatever arrived while the socket was down, in order and once.
  function catchUp() {
    if (!state.conversationId) return;
    var id = encodeURIComponent(state.conversationId);
    api("/api/conversations/" + id + "/messages?after=" + state.lastId)
      .then(function (body) {
        body.messages.forEach(function (m) {
          render(m, true);
        });
        return api("/api/conversations/" + id);
      })
      .then(function (conversation) {
        state.csat = conversation.csat;
        if (conversation.state !== state.convState) setConvState(conversation.state);
      })
      .catch(function () {
        /* the next reconnect tries again */
      });
  }

  window.addEventListener("offline", function () {
    // Browsers keep a dead socket "open" for a long time: treat offline as disconnected.
    dropSocket();
    setConnection("offline");
    markPending("Waiting for connection\u2026");
  });
  window.addEventListener("online", function () {
    attempt = 0;
    if (state.conversationId) {
      connect();
      flush();
    }
  });

  // ------------------------------------------------------------------ sending (outbox)

  function showPending(item) {
    var node = bubble("customer", item.text, {
      "data-message-id": "",
      "data-pending": "true",
      "data-client-id": item.client_message_id,
    });
    node.appendChild(
      el("span", {
        className: "status",
        text: navigator.onLine === false ? "Waiting for connection\u2026" : "Sending\u2026",
      })
    );
    pending.set(item.client_message_id, node);
    logEl.appendChild(node);
    scrollDown();
  }

  function markPending(text) {
    pending.forEach(function (node) {
      var status = node.querySelector(".status");
      if (status) status.textContent = text;
    });
  }

  function dropFromOutbox(clientId) {
    var before = state.outbox.length;
    state.outbox = state.outbox.filter(function (item) {
      return item.client_message_id !== clientId;
    });
    if (state.outbox.length !== before) save();
  }

  function showError(text) {
    errorEl.textContent = text;
  }

  function send(text, payload) {
    showError("");
    if (!String(text).trim()) {
      // Let the server explain (it owns the rules); nothing is queued.
      if (!state.conversationId) return;
      api("/api/conversations/" + encodeURIComponent(state.conversationId) + "/messages", {
        method: "POST",
        body: { text: String(text) },
      }).catch(function (e) {
        showError(e.message);
      });
      return;
    }
    var item = { client_message_id: uuid(), text: String(text), payload: payload || null };
    state.outbox.push(item);
    save();
    clearTransient();
    showPending(item);
    ensureConversation()
      .then(flush)
      .catch(function () {
        markPending("Waiting for connection\u2026");
        scheduleReconnect();
      });
  }

  var flushing = false;
  var retryTimer = null;

  // Send the outbox in order, one at a time. A resent client_message_id is stored once by
  // the server, so retrying after a lost answer cannot duplicate a message.
  function flush() {
    if (flushing || !state.conversationId || !state.outbox.length) return;
    if (navigator.onLine === false) {
      markPending("Waiting for connection\u2026");
      return;
    }
    flushing = true;
    var item = state.outbox[0];
    var body = { text: item.text, client_message_id: item.client_message_id };
    if (item.payload) body.payload = item.payload;
    var conversationId = state.conversationId;
    api("/api/conversations/" + encodeURIComponent(conversationId) + "/messages", {
      method: "POST",
      body: body,
    })
      .then(
        function (result) {
          flushing = false;
          dropFromOutbox(item.client_message_id);
          render(result.message, false);
          (result.replies || []).forEach(function (m) {
            render(m, true);
          });
          if (result.conversation && result.conversation.state) {
            if (result.conversation.state !== state.convState) setConvState(result.conversation.state);
          }
          flush();
        },
        function (error) {
          flushing = false;
          if (!error.status || error.status >= 500 || error.status === 429) {
            // Network or server trouble: keep it and try again later.
            markPending("Waiting for connection\u2026");
            clearTimeout(retryTimer);
            retryTimer = setTimeout(flush, 3000 + Math.random() * 2000);
            return;
          }
          if ((error.status === 404 || error.status === 401) && conversationId === state.conversationId) {
            resetConversation();
            booting = null;
            dropSocket();
            ensureConversation().catch(scheduleReconnect);
            return;
          }
          // Rejected (too long, empty...): say why and give the text back to edit.
          dropFromOutbox(item.client_message_id);
          var node = pending.get(item.client_message_id);
          if (node) node.remove();
          pending.delete(item.client_message_id);
          if (!item.payload && !inputEl.value) {
            inputEl.value = item.text;
            autosize();
          }
          showError(error.message);
          flush();
        }
      );
  }

  // ------------------------------------------------------------------ open / close

  function openPanel(focus) {
    state.open = true;
    save();
    panel.hidden = false;
    root.classList.add("is-open");
    launcher.setAttribute("aria-expanded", "true");
    launcher.setAttribute("aria-label", "Close chat");
    state.unread = 0;
    badge.hidden = true;
    if (focus) inputEl.focus();
    scrollDown();
    ensureConversation().catch(function () {
      setConnection("reconnecting");
      scheduleRetryBoot();
    });
  }

  var bootRetry = null;
  function scheduleRetryBoot() {
    clearTimeout(bootRetry);
    bootRetry = setTimeout(function () {
      ensureConversation().catch(scheduleRetryBoot);
    }, 3000 + Math.random() * 3000);
  }

  function closePanel() {
    state.open = false;
    save();
    panel.hidden = true;
    root.classList.remove("is-open");
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-label", "Open chat with " + (state.business.name || "us"));
    launcher.focus();
  }

  launcher.addEventListener("click", function () {
    if (state.open) closePanel();
    else openPanel(true);
  });
  closeBtn.addEventListener("click", closePanel);
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      event.preventDefault();
      closePanel();
    }
  });

  function autosize() {
    inputEl.style.height = "auto";
    inputEl.style.height = Math.min(inputEl.scrollHeight + 2, 120) + "px";
  }

  inputEl.addEventListener("input", autosize);
  inputEl.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submitComposer();
    }
  });
  composer.addEventListener("submit", function (event) {
    event.preventDefault();
    submitComposer();
  });

  function submitComposer() {
    var text = inputEl.value;
    if (text.trim()) {
      inputEl.value = "";
      autosize();
    }
    send(text, null);
    inputEl.focus();
  }

  humanBtn.addEventListener("click", function () {
    send(state.business.human || "Talk to a person", HUMAN_PAYLOAD);
  });

  // ------------------------------------------------------------------ start

  api("/api/business")
    .then(function (business) {
      state.business = {
        name: data.business || business.name || "",
        assistant: business.assistant_name || "",
        disclosure: business.disclosure || "",
        human: business.talk_to_person || "",
      };
      applyBusiness();
    })
    .catch(applyBusiness);

  if (state.open) {
    openPanel(false);
  } else if (state.conversationId) {
    // A returning visitor: keep their chat live (and count unread replies) while closed.
    ensureConversation().catch(scheduleRetryBoot);
  }
})();
