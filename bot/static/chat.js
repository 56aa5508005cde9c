// The standalone chat page (/): served under the pages' CSP, so no inline script.
"use strict";
const log = document.getElementById("log");
const typing = document.getElementById("typing");
const errorBox = document.getElementById("error");
const input = document.getElementById("text");
const seen = new Set();
// The conversation's id and its secret token, kept together (the token is the credential).
let {id: conversationId, token: conversationToken} =
  JSON.parse(localStorage.getItem("tandem.chat") || "{}");
let socket = null;

function render(message) {
  if (seen.has(message.id)) return;
  seen.add(message.id);
  const bubble = document.createElement("div");
  bubble.className = "msg " + message.sender;
  bubble.textContent = message.text;  // text only: never HTML from a message
  if (message.buttons && message.buttons.length) {
    const row = document.createElement("div");
    row.className = "buttons";
    for (const button of message.buttons) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = button.title;
      b.addEventListener("click", () => send(button.title, button.payload));
      row.appendChild(b);
    }
    bubble.appendChild(row);
  }
  log.appendChild(bubble);
  log.scrollTop = log.scrollHeight;
}

async function api(path, options) {
  const headers = {"Content-Type": "application/json"};
  if (conversationToken) headers["X-Conversation-Token"] = conversationToken;
  const response = await fetch(path, Object.assign({headers}, options));
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new Error(body.detail || response.statusText), {status: response.status});
  return body;
}

async function ensureConversation() {
  if (conversationId) {
    try {
      const history = await api(`/api/conversations/${conversationId}/messages`);
      history.messages.forEach(render);
      return;
    } catch (e) {
      if (e.status !== 404 && e.status !== 401) throw e;
    }
  }
  const created = await api("/api/conversations", {method: "POST", body: "{}"});
  conversationId = created.id;
  conversationToken = created.token;
  localStorage.setItem("tandem.chat", JSON.stringify({id: conversationId, token: conversationToken}));
}

function connect(attempt = 0) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws/chat/${conversationId}`);
  socket.onopen = () => {
    socket.send(JSON.stringify({type: "auth", token: conversationToken}));  // never in the URL
    attempt = 0;
    errorBox.textContent = "";
  };
  socket.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type === "message") render(frame.message);
    else if (frame.type === "typing") typing.textContent = frame.on ? "The assistant is typing…" : "";
    else if (frame.type === "error") errorBox.textContent = frame.detail;
  };
  socket.onclose = () => {
    socket = null;
    setTimeout(() => connect(attempt + 1), Math.min(1000 * 2 ** attempt, 15000));
  };
}

async function send(text, payload) {
  errorBox.textContent = "";
  const clientId = crypto.randomUUID ? crypto.randomUUID() : String(Date.now() + Math.random());
  const frame = {type: "message", text, client_message_id: clientId};
  if (payload) frame.payload = payload;
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify(frame));
    return;
  }
  try {  // REST fallback while the socket reconnects
    const result = await api(`/api/conversations/${conversationId}/messages`,
      {method: "POST", body: JSON.stringify(payload ? {text, payload, client_message_id: clientId}
                                               : {text, client_message_id: clientId})});
    render(result.message);
    result.replies.forEach(render);
  } catch (e) {
    errorBox.textContent = e.message;
  }
}

document.getElementById("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  send(text);
});
document.getElementById("human").addEventListener("click", () => send("Talk to a person", "/request_human"));

(async () => {
  try {
    const business = await api("/api/business");
    document.title = business.name;
    document.getElementById("title").textContent = business.name;
    document.getElementById("disclosure").textContent = business.disclosure;
  } catch (e) { /* the generic header stays */ }
  await ensureConversation();
  connect();
})();
