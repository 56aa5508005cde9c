/*
 * Tandem shared helpers for the staff console and the owner dashboard.
 * Plain browser JavaScript, no build step. Everything is on `window.Tandem`:
 *
 *   Tandem.el(tag, attrs, ...children)   Build an element. attrs: {class, text, dataset: {..},
 *                                        style: {..}, on: {click: fn}, any other attribute}.
 *                                        Children: nodes, strings (always text, never HTML),
 *                                        arrays, null/false (skipped). SVG tags get the SVG
 *                                        namespace when `tag` starts with "svg:".
 *   Tandem.clear(node)                   Remove every child of `node`; returns it.
 *   Tandem.api(path, opts)               fetch() JSON with the session cookie and, for
 *                                        POST/PUT/PATCH/DELETE, the X-CSRF-Token header.
 *                                        opts: {method, body (object, sent as JSON), signal}.
 *                                        Resolves to the parsed JSON (null for 204); rejects
 *                                        with Tandem.ApiError {status, detail, message}.
 *   Tandem.setCsrf(token) / getCsrf()    The CSRF token (from login or GET /api/staff/me).
 *   Tandem.me()                          GET /api/staff/me; stores the CSRF token; resolves
 *                                        to the user, or null when logged out (401).
 *   Tandem.logout()                      POST /api/staff/logout.
 *   Tandem.loginForm({title, subtitle, onLogin})
 *                                        A login form element (data-testids login-email,
 *                                        login-password, login-submit, login-error). Shows
 *                                        401/422/429 errors clearly; calls onLogin(user).
 *   Tandem.errorText(error)              A sentence for any error (ApiError or network).
 *   Tandem.formatDuration(seconds)       "45s", "3m 05s", "2h 10m".
 *   Tandem.formatTime(iso)               Local "14:05" today, else "Nov 24, 14:05".
 *   Tandem.formatMoney(value)            "$1,234" (whole dollars) or "$12.50".
 *   Tandem.sparkline(values, opts)       An inline SVG line chart; values are numbers or null.
 *                                        opts: {width, height, min, max, label, baseline,
 *                                        testid}. Sets data-points to the number of values.
 *   Tandem.beep()                        A short notification tone (WebAudio, no file).
 *   Tandem.unlockAudio()                 Call from a user gesture so later beeps may play.
 */
(function () {
  "use strict";

  var SVG_NS = "http://www.w3.org/2000/svg";
  var csrfToken = null;

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) {
      child.forEach(function (c) { append(node, c); });
      return;
    }
    if (typeof child === "string" || typeof child === "number") {
      node.appendChild(document.createTextNode(String(child)));
      return;
    }
    node.appendChild(child);
  }

  function el(tag, attrs) {
    var svg = tag.indexOf("svg:") === 0;
    var node = svg ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
    attrs = attrs || {};
    Object.keys(attrs).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) return;
      if (key === "text") node.textContent = String(value);
      else if (key === "class") node.setAttribute("class", value);
      else if (key === "dataset") {
        Object.keys(value).forEach(function (k) { node.dataset[k] = String(value[k]); });
      } else if (key === "style") {
        Object.keys(value).forEach(function (k) { node.style[k] = value[k]; });
      } else if (key === "on") {
        Object.keys(value).forEach(function (k) { node.addEventListener(k, value[k]); });
      } else if (key === "testid") node.setAttribute("data-testid", value);
      else if (value === true) node.setAttribute(key, "");
      else node.setAttribute(key, String(value));
    });
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function ApiError(status, detail) {
    this.name = "ApiError";
    this.status = status;
    this.detail = detail;
    this.message = detail;
  }
  ApiError.prototype = Object.create(Error.prototype);

  function detailText(body, status) {
    var detail = body && body.detail;
    if (Array.isArray(detail)) {
      // FastAPI validation errors: [{loc, msg}, ...]
      return detail.map(function (d) {
        var where = (d.loc || []).filter(function (p) { return p !== "body"; }).join(".");
        return (where ? where + ": " : "") + d.msg;
      }).join("; ");
    }
    if (typeof detail === "string" && detail) return detail;
    return "The server answered " + status + ".";
  }

  function api(path, opts) {
    opts = opts || {};
    var method = (opts.method || "GET").toUpperCase();
    var headers = { Accept: "application/json" };
    var init = { method: method, headers: headers, credentials: "same-origin" };
    if (opts.signal) init.signal = opts.signal;
    if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(opts.body);
    }
    if (method !== "GET" && method !== "HEAD" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
    return fetch(path, init).then(function (response) {
      if (response.status === 204) return null;
      return response.text().then(function (raw) {
        var body = null;
        try { body = raw ? JSON.parse(raw) : null; } catch (e) { body = null; }
        if (!response.ok) throw new ApiError(response.status, detailText(body, response.status));
        return body;
      });
    });
  }

  function errorText(error) {
    if (error instanceof ApiError) {
      if (error.status === 401) return "Your session has ended. Please log in again.";
      return error.detail;
    }
    return "Cannot reach the server. Check your connection and try again.";
  }

  function me() {
    return api("/api/staff/me").then(function (body) {
      csrfToken = body.csrf_token;
      return body.user;
    }, function (error) {
      if (error instanceof ApiError && error.status === 401) return null;
      throw error;
    });
  }

  function logout() {
    return api("/api/staff/logout", { method: "POST" }).then(function () { csrfToken = null; });
  }

  function loginForm(options) {
    options = options || {};
    var email = el("input", {
      id: "login-email", type: "email", name: "email", autocomplete: "username", required: true,
      testid: "login-email", maxlength: 254
    });
    var password = el("input", {
      id: "login-password", type: "password", name: "password", required: true,
      autocomplete: "current-password", testid: "login-password", maxlength: 1000
    });
    var error = el("p", { class: "login-error", role: "alert", testid: "login-error", hidden: true });
    var submit = el("button", { type: "submit", class: "btn btn-primary", testid: "login-submit" },
      "Log in");
    var form = el("form", { class: "login-card", novalidate: true, "aria-labelledby": "login-title" },
      el("div", { class: "login-brand", "aria-hidden": "true" }, "T"),
      el("h1", { id: "login-title" }, options.title || "Log in"),
      options.subtitle ? el("p", { class: "login-subtitle" }, options.subtitle) : null,
      el("label", { for: "login-email" }, "E-mail"), email,
      el("label", { for: "login-password" }, "Password"), password,
      error, submit);

    function showError(text) {
      error.textContent = text;
      error.hidden = false;
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      unlockAudio();
      error.hidden = true;
      if (!email.value.trim() || !password.value) {
        showError("Enter your e-mail and password.");
        return;
      }
      submit.disabled = true;
      submit.textContent = "Logging in…";
      api("/api/staff/login", {
        method: "POST", body: { email: email.value.trim(), password: password.value }
      }).then(function (body) {
        csrfToken = body.csrf_token;
        password.value = "";
        if (options.onLogin) options.onLogin(body.user);
      }, function (err) {
        if (err instanceof ApiError && err.status === 401) {
          showError(err.detail || "Wrong e-mail or password.");
        } else if (err instanceof ApiError && err.status === 429) {
          showError(err.detail);
        } else if (err instanceof ApiError && err.status === 422) {
          showError("Enter a valid e-mail and password.");
        } else {
          showError(errorText(err));
        }
        password.focus();
      }).then(function () {
        submit.disabled = false;
        submit.textContent = "Log in";
      });
    });
    return form;
  }

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function formatDuration(seconds) {
    var s = Math.max(0, Math.floor(seconds || 0));
    if (s < 60) return s + "s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + "m " + pad(s % 60) + "s";
    var h = Math.floor(m / 60);
    if (h < 48) return h + "h " + pad(m % 60) + "m";
    return Math.floor(h / 24) + "d " + (h % 24) + "h";
  }

  function formatTime(iso) {
    if (!iso) return "";
    var date = new Date(iso);
    if (isNaN(date.getTime())) return "";
    var time = pad(date.getHours()) + ":" + pad(date.getMinutes());
    var now = new Date();
    if (date.toDateString() === now.toDateString()) return time;
    return date.toLocaleDateString(undefined, { month: "short", day: "numeric" }) + ", " + time;
  }

  function formatMoney(value) {
    var n = Number(value || 0);
    var whole = Math.abs(n - Math.round(n)) < 0.005 || Math.abs(n) >= 1000;
    return "$" + n.toLocaleString("en-US", {
      minimumFractionDigits: whole ? 0 : 2, maximumFractionDigits: whole ? 0 : 2
    });
  }

  function sparkline(values, opts) {
    opts = opts || {};
    var width = opts.width || 240;
    var height = opts.height || 56;
    var min = opts.min !== undefined ? opts.min : Math.min.apply(null, values.concat([0]));
    var max = opts.max !== undefined ? opts.max : Math.max.apply(null, values.concat([1]));
    var span = max - min || 1;
    var padding = 4;
    var svg = el("svg:svg", {
      class: "sparkline", width: width, height: height,
      viewBox: "0 0 " + width + " " + height, role: "img",
      "aria-label": opts.label || "trend", "data-points": values.length,
      testid: opts.testid || null
    });
    svg.appendChild(el("svg:title", { text: opts.label || "trend" }));
    function x(i) {
      if (values.length < 2) return width / 2;
      return padding + (i * (width - 2 * padding)) / (values.length - 1);
    }
    function y(v) { return padding + (1 - (v - min) / span) * (height - 2 * padding); }
    if (opts.baseline !== undefined) {
      svg.appendChild(el("svg:line", {
        class: "sparkline-baseline", x1: 0, x2: width, y1: y(opts.baseline), y2: y(opts.baseline)
      }));
    }
    var points = [];
    values.forEach(function (v, i) { if (v !== null && v !== undefined) points.push([x(i), y(v), v]); });
    if (points.length > 1) {
      svg.appendChild(el("svg:polyline", {
        class: "sparkline-line", fill: "none",
        points: points.map(function (p) { return p[0].toFixed(1) + "," + p[1].toFixed(1); }).join(" ")
      }));
    }
    points.forEach(function (p) {
      svg.appendChild(el("svg:circle", {
        class: "sparkline-dot" + (p[2] < 0 ? " negative" : ""), cx: p[0].toFixed(1),
        cy: p[1].toFixed(1), r: 3
      }));
    });
    return svg;
  }

  var audioContext = null;

  function unlockAudio() {
    try {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return;
      if (!audioContext) audioContext = new Ctx();
      if (audioContext.state === "suspended") audioContext.resume();
    } catch (e) { /* no audio: notifications stay visual */ }
  }

  function beep() {
    try {
      unlockAudio();
      if (!audioContext) return;
      var now = audioContext.currentTime;
      var osc = audioContext.createOscillator();
      var gain = audioContext.createGain();
      osc.type = "sine";
      osc.frequency.setValueAtTime(880, now);
      osc.frequency.setValueAtTime(1175, now + 0.12);
      gain.gain.setValueAtTime(0.0001, now);
      gain.gain.exponentialRampToValueAtTime(0.15, now + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.3);
      osc.connect(gain);
      gain.connect(audioContext.destination);
      osc.start(now);
      osc.stop(now + 0.32);
    } catch (e) { /* ignore: sound is a nicety */ }
  }

  window.Tandem = {
    el: el,
    clear: clear,
    api: api,
    ApiError: ApiError,
    setCsrf: function (token) { csrfToken = token; },
    getCsrf: function () { return csrfToken; },
    me: me,
    logout: logout,
    loginForm: loginForm,
    errorText: errorText,
    formatDuration: formatDuration,
    formatTime: formatTime,
    formatMoney: formatMoney,
    sparkline: sparkline,
    beep: beep,
    unlockAudio: unlockAudio
  };
})();
