// The chat page: every turn reads the session from the memory server, looks up long-term memory, answers (the
// model through server.py, or the offline responder below), and stores both messages. All calls go to this page's
// own server (server.py), which adds the API key and forwards them: /api/memory/<Motorhead route>, /api/model.
// Message text is user-controlled: it is only ever set as textContent, never parsed as HTML.
"use strict";

const OFFLINE_LABEL = "[offline responder: no model configured, answering from the memory]";
const RECALL_LIMIT = 3;
const QUOTE_CHARS = 200;
const STOP_WORDS = new Set(
  "the and you what that this with are was for have your about did does where who when how which tell me".split(" "),
);

const state = { model: null, recallOn: true, busy: false };
const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;

// --- the memory server, through /api/memory -----------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, body) {
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, (data && data.error) || `HTTP ${response.status}`);
  return data;
}

const memoryPath = (session) => `/api/memory/sessions/${enc(session)}/memory`;

/** The session, oldest message first (the API lists the newest first). */
async function getMemory(session) {
  const body = await api("GET", memoryPath(session));
  return { messages: body.messages.slice().reverse(), context: body.context };
}

async function addMemory(session, user, messages) {
  const query = user ? `?user_id=${enc(user)}` : "";
  await api("POST", memoryPath(session) + query, { messages });
}

/** Long-term memory: every session of the user when there is one, else this session. [] once the server says no. */
async function recall(session, user, text) {
  if (!state.recallOn) return [];
  try {
    if (user) return await api("POST", `/api/memory/users/${enc(user)}/retrieval`, { text, limit: RECALL_LIMIT });
    return await api("POST", `/api/memory/sessions/${enc(session)}/retrieval`, { text, k: RECALL_LIMIT });
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 400) throw error;
    state.recallOn = false;
    $("recall-note").textContent = `Recall is off for this page: ${error.message}`;
    return [];
  }
}

// --- one turn: the prompt built from the memory, and the answer ---------------------------------------------------

function promptMessages(turn) {
  const system = ["You are a helpful assistant. Your memory of this user is kept on a memory server."];
  if (turn.context) system.push(`Summary of the earlier conversation: ${turn.context}`);
  if (turn.recalled.length) {
    system.push("Possibly relevant messages from earlier conversations:");
    for (const hit of turn.recalled) system.push(`- ${hit.role}: ${hit.content}`);
  }
  const window = turn.window.map((m) => ({ role: m.role === "AI" ? "assistant" : "user", content: m.content }));
  return [{ role: "system", content: system.join("\n") }, ...window, { role: "user", content: turn.text }];
}

const words = (text) =>
  new Set((text.toLowerCase().match(/[\p{L}\p{N}_]+/gu) || []).filter((w) => w.length > 2 && !STOP_WORDS.has(w)));

const quote = (text) => `“${text.length <= QUOTE_CHARS ? text : text.slice(0, QUOTE_CHARS - 1) + "…"}”`;

/** The candidate sharing the most words with the question, the newest on a tie (candidates are oldest first). */
function closest(question, candidates) {
  const asked = words(question);
  let best = null;
  let bestScore = -1;
  for (const candidate of candidates.slice().reverse()) {
    const score = [...words(candidate)].filter((w) => asked.has(w)).length;
    if (score > bestScore) [best, bestScore] = [candidate, score];
  }
  return best;
}

/** No model: an answer made only of what the memory returned, labelled as such (chat-py's, line for line). */
function offlineReply(turn) {
  const said = turn.window.filter((m) => m.role !== "AI").map((m) => m.content);
  const recalled = turn.recalled.filter((hit) => hit.role !== "AI");
  const parts = [];
  if (recalled.length) {
    const found = recalled.map((h) => quote(h.content) + (h.session_id ? ` (session ${h.session_id})` : ""));
    parts.push(`long-term memory found ${found.join(", ")}`);
  }
  const earlier = closest(turn.text, said);
  if (earlier !== null) {
    const of = said.length > 1 ? ` (1 of ${said.length} things you said in this session)` : "";
    parts.push(`earlier you said ${quote(earlier)}${of}`);
  }
  if (turn.context) parts.push(`the summary so far is ${quote(turn.context)}`);
  if (!parts.length) parts.push("nothing is remembered in this session yet: tell me something, then ask me about it");
  const text = parts.join("; ");
  const end = /[.!?”]$/.test(text) ? "" : ".";
  return `${OFFLINE_LABEL} ${text[0].toUpperCase()}${text.slice(1)}${end}`;
}

async function answer(turn) {
  if (state.model === null) return offlineReply(turn);
  const body = await api("POST", "/api/model", { messages: promptMessages(turn) });
  return body.content;
}

// --- the page -----------------------------------------------------------------------------------------------------

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text; // text, never markup: it is the user's
  return node;
}

function showMessage(role, content) {
  const item = element("li", role === "AI" ? "ai" : role === "note" ? "note" : "human");
  if (role !== "note") item.append(element("span", "role", role === "AI" ? "ai" : "you"));
  item.append(element("span", "content", content));
  $("messages").append(item);
  item.scrollIntoView({ block: "nearest" });
}

function showMemory(memory, recalled) {
  $("summary").textContent = memory.context || "(none yet)";
  $("window").textContent = `${memory.messages.length} messages`;
  const list = $("recalled");
  list.replaceChildren(
    ...recalled.map((hit) =>
      element("li", "", `${hit.role}: ${hit.content}${hit.session_id ? ` [session ${hit.session_id}]` : ""}`),
    ),
  );
}

const session = () => $("session").value.trim();
const user = () => $("user").value.trim() || null;

async function openSession() {
  localStorage.setItem("chat-web.session", session());
  localStorage.setItem("chat-web.user", $("user").value.trim());
  const memory = await getMemory(session());
  $("messages").replaceChildren();
  if (memory.context) showMessage("note", `Summary of older messages: ${memory.context}`);
  for (const message of memory.messages) showMessage(message.role, message.content);
  showMemory(memory, []);
}

async function turn(text) {
  const memory = await getMemory(session());
  const inWindow = new Set(memory.messages.map((m) => m.content));
  const recalled = (await recall(session(), user(), text)).filter((hit) => !inWindow.has(hit.content));
  showMemory(memory, recalled);
  showMessage("Human", text);
  const reply = await answer({ text, window: memory.messages, context: memory.context, recalled });
  await addMemory(session(), user(), [
    { role: "Human", content: text },
    { role: "AI", content: reply },
  ]);
  showMessage("AI", reply);
}

async function recallCommand(question) {
  const hits = await recall(session(), user(), question);
  showMemory(await getMemory(session()), hits);
  if (state.recallOn && !hits.length) $("recall-note").textContent = "Nothing found yet (indexing takes a second).";
}

async function guarded(action) {
  if (state.busy) return;
  state.busy = true;
  $("send").disabled = true;
  $("status").textContent = "";
  try {
    await action();
  } catch (error) {
    $("status").textContent = error instanceof ApiError ? `The server said: ${error.message}` : String(error);
  } finally {
    state.busy = false;
    $("send").disabled = false;
  }
}

async function start() {
  const randomId = () => "web-" + Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16)).join("");
  $("session").value = localStorage.getItem("chat-web.session") || randomId();
  $("user").value = localStorage.getItem("chat-web.user") || "";
  const config = await api("GET", "/api/config");
  state.model = config.model;
  const badge = $("responder");
  badge.textContent = state.model === null ? "offline responder (no model configured)" : `model ${state.model}`;
  badge.classList.toggle("offline", state.model === null);

  $("settings").addEventListener("submit", (event) => {
    event.preventDefault();
    state.recallOn = true;
    $("recall-note").textContent = "";
    guarded(openSession);
  });
  $("forget").addEventListener("click", () =>
    guarded(async () => {
      await api("DELETE", memoryPath(session()));
      await openSession();
    }),
  );
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("text").value.trim();
    if (!text) return;
    $("text").value = "";
    const question = text.match(/^\/recall\s+(.+)$/s);
    guarded(() => (question ? recallCommand(question[1]) : turn(text)));
  });
  await guarded(openSession);
  document.body.dataset.ready = "true"; // for the browser test
}

start().catch((error) => {
  $("status").textContent = String(error);
});
