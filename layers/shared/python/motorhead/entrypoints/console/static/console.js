// Motorhead console: plain JavaScript, no build step, no other origin. It calls the public API of the origin that
// served it, with the key the user pastes: kept in sessionStorage (this tab only), sent as `Authorization: Bearer`,
// never put in a URL, never logged. Everything the API returns is rendered as text (textContent), never as HTML.
"use strict";

(() => {
  const KEY_STORAGE = "motorhead.console.key";
  const PAGE_SIZE = 15;
  const STATS_CONCURRENCY = 4; // of the browser's 6 connections to the origin: 2 stay free for the page's own calls
  // The API is where the console is mounted: "/console/" → "", "/motorhead/console/" → "/motorhead".
  const API_BASE = location.pathname.replace(/\/console(\/[^/]*)?$/, "");
  const SVG = "http://www.w3.org/2000/svg";

  const state = {
    key: sessionStorage.getItem(KEY_STORAGE) || "",
    caller: null,
    page: 1,
    total: 0,
    nextPage: null,
    namespace: "",
    user: "",
    session: null, // the open session's id
    stats: null,
  };

  const $ = (id) => document.getElementById(id);

  // -- DOM helpers: text only ------------------------------------------------------------------------------------

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = String(value);
      else if (name === "title") node.title = String(value);
      else if (name.startsWith("data-")) node.setAttribute(name, String(value));
      else node[name] = value;
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function toast(text) {
    const note = el("div", { class: "toast", text, role: "status" });
    document.body.append(note);
    setTimeout(() => note.remove(), 2500);
  }

  function banner(title, detail, kind) {
    const node = $("banner");
    node.replaceChildren(el("strong", { text: title }), detail ? el("span", { text: detail }) : null);
    node.className = "banner" + (kind === "error" ? " error" : "");
    show(node, true);
  }

  function hideBanner() {
    show($("banner"), false);
  }

  const number = (value) => (typeof value === "number" ? value.toLocaleString("en-US") : "—");
  const fixed = (value, digits = 3) => (typeof value === "number" ? value.toFixed(digits) : "—");

  function ago(ms) {
    if (!ms) return "—";
    const seconds = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (seconds < 60) return `${seconds}s ago`;
    if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
    if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
    return `${Math.round(seconds / 86400)} d ago`;
  }

  const when = (ms) => (ms ? new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC") : "");

  // -- the API ---------------------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // A path segment: percent-encoded whole ("/" and "%" included), so any session or user id reaches the API intact.
  const segment = (id) => encodeURIComponent(id);

  async function call(method, path, { query, body } = {}) {
    const url = new URL(API_BASE + path, location.origin);
    for (const [name, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
    }
    const headers = { Accept: "application/json" };
    if (state.key) headers.Authorization = `Bearer ${state.key}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
        referrerPolicy: "no-referrer",
      });
    } catch (_) {
      throw new ApiError(0, "the API could not be reached");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok) {
      const message = data && typeof data.error === "string" ? data.error : response.statusText;
      throw new ApiError(response.status, message);
    }
    return { data, response };
  }

  function explain(error, what) {
    if (!(error instanceof ApiError)) return `${what} failed: ${error}`;
    if (error.status === 0) return `${what} failed: ${error.message}.`;
    if (error.status === 401) return `${what}: the key was refused (${error.message}).`;
    if (error.status === 403) return `${what}: this key may not do that (${error.message}).`;
    return `${what} failed (${error.status}): ${error.message}`;
  }

  // -- who the caller is -----------------------------------------------------------------------------------------

  async function connect() {
    $("key-forget").hidden = !state.key;
    try {
      const { data } = await call("GET", "/keys/current");
      state.caller = data;
      hideBanner();
      renderIdentity();
      const wanted = new URLSearchParams(location.search).get("session");
      await Promise.all([loadSessions(), wanted === null ? null : openSession(wanted)]);
    } catch (error) {
      state.caller = null;
      renderIdentity();
      clearSessions();
      if (error instanceof ApiError && error.status === 401) {
        if (state.key) {
          banner(
            "The key was refused.",
            `The server answered 401 (${error.message}). Check the key, or create one: make key TENANT=<tenant>.`,
            "error",
          );
        } else {
          banner(
            "This server needs an API key.",
            "Authentication is on: paste a key above (make key TENANT=<tenant> creates one). It stays in this tab only.",
          );
        }
        showEmpty(state.key ? "The key was refused: no sessions to show." : "Paste an API key to list sessions.");
      } else {
        banner("The API could not be reached.", explain(error, "GET /keys/current"), "error");
        showEmpty("No connection to the API.");
      }
    }
  }

  function renderIdentity() {
    const node = $("identity");
    const caller = state.caller;
    if (!caller) {
      node.replaceChildren(el("span", { text: state.key ? "key refused" : "no key" }));
      return;
    }
    if (caller.auth === "none") {
      node.replaceChildren(el("strong", { text: "auth off" }), " · no key needed on this server");
      return;
    }
    const parts = [el("strong", { text: caller.tenant }), ` · ${caller.auth}`];
    if (caller.key_id) parts.push(" · key ", el("code", { text: caller.key_id }));
    for (const scope of caller.scopes || []) parts.push(el("span", { class: "pill", text: scope }));
    node.replaceChildren(...parts);
  }

  // -- sessions --------------------------------------------------------------------------------------------------

  function clearSessions() {
    $("session-rows").replaceChildren();
    $("session-total").textContent = "";
    $("page-info").textContent = "";
    $("page-prev").disabled = true;
    $("page-next").disabled = true;
  }

  function showEmpty(text) {
    const node = $("session-empty");
    node.textContent = text;
    show(node, Boolean(text));
  }

  async function loadSessions() {
    const query = { page: state.page, size: PAGE_SIZE, namespace: state.namespace, user_id: state.user };
    let result;
    try {
      result = await call("GET", "/sessions", { query });
    } catch (error) {
      clearSessions();
      showEmpty(explain(error, "Listing sessions"));
      return;
    }
    const ids = Array.isArray(result.data) ? result.data : [];
    state.total = Number(result.response.headers.get("X-Total-Count") || ids.length);
    state.nextPage = result.response.headers.get("X-Next-Page");
    const first = ids.length ? (state.page - 1) * PAGE_SIZE + 1 : 0;
    $("session-total").textContent = `${number(state.total)} in all`;
    $("page-info").textContent = ids.length ? `${first}–${first + ids.length - 1} of ${number(state.total)}` : "";
    $("page-prev").disabled = state.page <= 1;
    $("page-next").disabled = !state.nextPage;
    const rows = ids.map((id) => sessionRow(id));
    $("session-rows").replaceChildren(...rows.map((row) => row.node));
    showEmpty(ids.length ? "" : "No sessions" + (state.namespace || state.user ? " match these filters." : " yet."));
    await pooled(rows, STATS_CONCURRENCY, (row) => row.fill());
  }

  function sessionRow(id) {
    const cells = {
      messages: el("td", { class: "num", text: "…" }),
      tokens: el("td", { class: "num", text: "…" }),
      updated: el("td", { class: "muted", text: "…" }),
    };
    const node = el(
      "tr",
      { "data-session": id, class: id === state.session ? "selected" : "" },
      el("td", { class: "sid", text: id, title: id }),
      cells.messages,
      cells.tokens,
      cells.updated,
    );
    node.addEventListener("click", () => openSession(id));
    const fill = async () => {
      try {
        const { data } = await call("GET", `/sessions/${segment(id)}`);
        if (!data.exists) throw new ApiError(404, "deleted");
        cells.messages.textContent = number(data.messages);
        cells.tokens.textContent = number(data.tokens);
        cells.updated.textContent = ago(data.updated_at);
        cells.updated.title = when(data.updated_at);
      } catch (error) {
        cells.messages.textContent = cells.tokens.textContent = "—";
        cells.updated.textContent = error instanceof ApiError && error.status === 404 ? "deleted" : "error";
      }
    };
    return { node, fill };
  }

  async function pooled(items, width, work) {
    const queue = items.slice();
    const workers = Array.from({ length: Math.min(width, queue.length) }, async () => {
      while (queue.length) await work(queue.shift());
    });
    await Promise.all(workers);
  }

  function markSelected() {
    for (const row of $("session-rows").querySelectorAll("tr")) {
      row.classList.toggle("selected", row.getAttribute("data-session") === state.session);
    }
  }

  // -- one session -----------------------------------------------------------------------------------------------

  function setUrl(sessionId) {
    const query = sessionId === null ? "" : `?session=${encodeURIComponent(sessionId)}`;
    history.replaceState(null, "", location.pathname + query);
  }

  function detailError(text) {
    const node = $("detail-error");
    node.textContent = text;
    show(node, Boolean(text));
  }

  async function openSession(id) {
    state.session = id;
    setUrl(id);
    markSelected();
    detailError("");
    let stats;
    let memory;
    try {
      [{ data: stats }, { data: memory }] = await Promise.all([
        call("GET", `/sessions/${segment(id)}`),
        call("GET", `/sessions/${segment(id)}/memory`),
      ]);
    } catch (error) {
      show($("detail-body"), false);
      show($("detail-empty"), false);
      detailError(explain(error, "Opening the session"));
      return;
    }
    if (state.session !== id) return; // another session was opened meanwhile
    if (!stats.exists) {
      show($("detail-body"), false);
      show($("detail-empty"), false);
      detailError(`No session "${id}" in this tenant: it was never written, or it was deleted.`);
      return;
    }
    state.stats = stats;
    renderSession(id, stats, memory);
  }

  function renderSession(id, stats, memory) {
    show($("detail-empty"), false);
    show($("detail-body"), true);
    $("d-id").textContent = id;
    const badges = [];
    badges.push(
      stats.summary_pending
        ? el("span", { class: "pill warn", text: "summary pending", "data-flag": "summary-pending" })
        : el("span", { class: "pill ok", text: "summary up to date", "data-flag": "summary-done" }),
    );
    // With long-term memory off nothing is ever indexed: "up to date" would say that something was
    badges.push(
      stats.long_term_memory === false
        ? el("span", { class: "pill info", text: "long-term memory off", "data-flag": "index-off" })
        : stats.index_pending
          ? el("span", { class: "pill warn", text: `index pending · ${stats.unindexed}`, "data-flag": "index-pending" })
          : el("span", { class: "pill ok", text: "index up to date", "data-flag": "index-done" }),
    );
    badges.push(el("span", { class: "pill info", text: stats.user_id === null ? "no user" : `user ${stats.user_id}` }));
    for (const ns of stats.namespaces) {
      badges.push(el("span", { class: "pill", text: ns === "" ? "default namespace" : `namespace ${ns}` }));
    }
    $("d-badges").replaceChildren(...badges);

    const tile = (label, value, sub, name) =>
      el(
        "div",
        { class: "stat", "data-stat": name },
        el("div", { class: "label", text: label }),
        el("div", { class: "value", text: value }),
        el("div", { class: "sub", text: sub || "" }),
      );
    $("d-stats").replaceChildren(
      tile("Window", number(stats.messages), "messages stored now", "messages"),
      tile("Total", number(stats.total_messages), "messages ever appended", "total"),
      // `tokens` counts what a model spent on summaries: a summary beside 0 had none (the offline summarizer, or a
      // client's own `context`), which "used by summaries" alone would contradict
      tile("Tokens", number(memory.tokens), memory.context !== null && !memory.tokens
        ? "no model wrote the summary (offline summarizer, or a client's context)"
        : "model tokens used by summaries", "tokens"),
      tile("Last write", ago(stats.updated_at), when(stats.updated_at), "updated"),
      tile("Created", ago(stats.created_at), when(stats.created_at), "created"),
    );

    const context = $("d-context");
    context.textContent = memory.context === null ? "No summary yet." : memory.context;
    context.classList.toggle("none", memory.context === null);

    const items = memory.messages.map((message) =>
      el(
        "li",
        { class: `role-${String(message.role).replace(/[^A-Za-z0-9_-]/g, "")}`, "data-id": message.id },
        el(
          "div",
          { class: "meta" },
          el("span", { class: "role", text: message.role }),
          el("span", { text: `#${message.id}` }),
          el("span", { text: ago(message.created_at), title: when(message.created_at) }),
        ),
        el("div", { class: "content", text: message.content }),
      ),
    );
    $("d-messages").replaceChildren(...items);
    if (!items.length) $("d-messages").append(el("li", { class: "muted", text: "The window is empty." }));
    $("q-scope").querySelector("option[value=user]").disabled = stats.user_id === null;
    if (stats.user_id === null) $("q-scope").value = "session";
    drawActivity(stats, memory.messages);
  }

  // -- chart: messages over the session's life (each message's id is the count of messages appended up to it) ------

  function drawActivity(stats, messages) {
    const box = $("d-chart");
    const points = messages
      .map((message) => ({ t: message.created_at, n: message.id }))
      .sort((a, b) => a.n - b.n);
    if (!points.length) {
      box.replaceChildren(el("p", { class: "muted", text: "No messages to draw." }));
      return;
    }
    const width = 560;
    const height = 190;
    const pad = { left: 40, right: 14, top: 12, bottom: 26 };
    const t0 = Math.min(stats.created_at || points[0].t, points[0].t);
    const t1 = Math.max(points[points.length - 1].t, t0 + 1000);
    const n1 = Math.max(stats.total_messages, points[points.length - 1].n, 1);
    const x = (t) => pad.left + ((t - t0) / (t1 - t0)) * (width - pad.left - pad.right);
    const y = (n) => height - pad.bottom - (n / n1) * (height - pad.top - pad.bottom);
    const chart = svg("svg", {
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": `Messages appended over time: ${n1} in all`,
      "data-chart": "activity",
      "data-points": points.length,
    });
    for (const fraction of [0, 0.5, 1]) {
      const n = Math.round(n1 * fraction);
      chart.append(svg("line", { class: "grid", x1: pad.left, x2: width - pad.right, y1: y(n), y2: y(n) }));
      chart.append(svg("text", { class: "tick", x: pad.left - 6, y: y(n) + 3, "text-anchor": "end" }, n));
    }
    chart.append(svg("line", { class: "axis", x1: pad.left, x2: width - pad.right, y1: y(0), y2: y(0) }));
    chart.append(svg("text", { class: "tick", x: pad.left, y: height - 8 }, when(t0).slice(5, 16)));
    chart.append(svg("text", { class: "tick", x: width - pad.right, y: height - 8, "text-anchor": "end" }, when(t1).slice(5, 16)));
    // Messages before the window were folded into the summary: a dashed line from the first write to the window.
    const first = points[0];
    if (first.n > 1) {
      chart.append(svg("path", { class: "folded", d: `M${x(t0)},${y(0)} L${x(first.t)},${y(first.n - 1)}` }));
    }
    let line = `M${x(first.t)},${y(first.n - 1)}`;
    for (const point of points) line += ` L${x(point.t)},${y(point.n)}`;
    const last = points[points.length - 1];
    chart.append(svg("path", { class: "area", d: `${line} L${x(last.t)},${y(0)} L${x(first.t)},${y(0)} Z` }));
    chart.append(svg("path", { class: "line", d: line }));
    for (const point of points) {
      const dot = svg("circle", { class: "dot", cx: x(point.t), cy: y(point.n), r: 3 });
      dot.append(svg("title", {}, `message #${point.n} · ${when(point.t)}`));
      chart.append(dot);
    }
    const legend = el(
      "div",
      { class: "legend" },
      el("span", { text: `${number(stats.total_messages)} messages appended` }),
      el("span", { text: `${number(stats.messages)} in the window` }),
      first.n > 1 ? el("span", { text: `${number(first.n - 1)} folded into the summary (dashed)` }) : null,
    );
    box.replaceChildren(chart, legend);
  }

  // -- append, delete --------------------------------------------------------------------------------------------

  async function appendMessage() {
    const content = $("append-content").value;
    const role = $("append-role").value;
    const error = $("append-error");
    show(error, false);
    if (!state.session || !content.trim()) return;
    const named = (state.stats?.namespaces || []).filter((ns) => ns !== "");
    const namespace = state.namespace || (named.length === 1 ? named[0] : "");
    $("append-send").disabled = true;
    try {
      await call("POST", `/sessions/${segment(state.session)}/memory`, {
        query: { namespace },
        body: { messages: [{ role, content }] },
      });
      $("append-content").value = "";
      await openSession(state.session);
      await loadSessions();
    } catch (failure) {
      error.textContent = explain(failure, "Appending");
      show(error, true);
    } finally {
      $("append-send").disabled = false;
    }
  }

  function askDelete() {
    if (!state.session) return;
    $("confirm-id").textContent = state.session;
    $("confirm-delete").showModal();
  }

  async function deleteSession() {
    const id = state.session;
    $("confirm-delete").close();
    try {
      await call("DELETE", `/sessions/${segment(id)}/memory`);
    } catch (error) {
      detailError(explain(error, "Deleting the session"));
      return;
    }
    state.session = null;
    state.stats = null;
    setUrl(null);
    show($("detail-body"), false);
    show($("detail-empty"), true);
    toast(`Deleted ${id}`);
    await loadSessions();
  }

  // -- retrieval -------------------------------------------------------------------------------------------------

  async function search() {
    const text = $("q-text").value.trim();
    const note = $("q-note");
    if (!state.session || !text) return;
    const k = Math.min(100, Math.max(1, Number($("q-k").value) || 8));
    const byUser = $("q-scope").value === "user" && state.stats && state.stats.user_id !== null;
    show(note, false);
    $("q-go").disabled = true;
    let hits;
    try {
      const { data } = byUser
        ? await call("POST", `/users/${segment(state.stats.user_id)}/retrieval`, {
            body: { text, limit: k, explain: true },
          })
        : await call("POST", `/sessions/${segment(state.session)}/retrieval`, { body: { text, k, explain: true } });
      hits = data;
    } catch (error) {
      note.textContent =
        error instanceof ApiError && error.status === 400 ? `Retrieval is off: ${error.message}` : explain(error, "Search");
      note.className = "note error";
      show(note, true);
      $("q-chart").replaceChildren();
      show($("q-table"), false);
      return;
    } finally {
      $("q-go").disabled = false;
    }
    renderHits(hits, byUser);
  }

  function renderHits(hits, byUser) {
    const note = $("q-note");
    if (!hits.length) {
      note.textContent = "Nothing indexed matches (messages are indexed a moment after they are appended).";
      note.className = "note";
      show(note, true);
      $("q-chart").replaceChildren();
      show($("q-table"), false);
      return;
    }
    const cell = (value, digits) => el("td", { class: "num" + (value < 0 ? " neg" : ""), text: fixed(value, digits) });
    // One candidate alone: the fusion's z-scores have nothing to be measured against, so every term (and the score,
    // their sum) is 0. Say so, rather than a row of 0.000; its raw cosine and BM25 still tell how well it matches.
    const lone = hits.length === 1 && Boolean(hits[0].parts) && PARTS.every((name) => !Number(hits[0].parts[name]));
    const rows = hits.map((hit, rank) => {
      const parts = hit.parts || {};
      const meta = [hit.role, `#${hit.id}`, ago(hit.created_at)];
      if (byUser) meta.unshift(`session ${hit.session_id}`);
      const terms = lone
        ? [
            el("td", { class: "num", text: "—", title: "nothing to fuse against" }),
            el("td", { class: "lone", colSpan: 4, text: "only candidate: no fusion", "data-lone": "true" }),
          ]
        : [el("td", { class: "num", text: fixed(hit.score) }), cell(parts.vector), cell(parts.keyword),
           cell(parts.speaker), cell(parts.next)];
      return el(
        "tr",
        { "data-rank": rank + 1 },
        el("td", { class: "num", text: rank + 1 }),
        ...terms,
        cell(parts.cosine),
        cell(parts.bm25, 2),
        el(
          "td",
          { class: "msg" },
          el("div", { class: "meta", text: meta.join(" · ") }),
          el("div", { class: "content", text: hit.content }),
        ),
      );
    });
    $("q-rows").replaceChildren(...rows);
    show($("q-table"), true);
    if (lone) {
      const text = "One candidate: nothing to rank it against, so there is no fusion to draw (its cosine and BM25 are in the table).";
      $("q-chart").replaceChildren(el("p", { class: "note", text, "data-chart": "lone" }));
    } else {
      drawScores(hits);
    }
  }

  // -- chart: each hit's score as the sum of its parts (negative z-scores to the left of zero) ----------------------

  const PARTS = ["vector", "keyword", "speaker", "next"];

  function drawScores(hits) {
    const rowHeight = 22;
    const width = 720;
    const pad = { left: 34, right: 60, top: 6, bottom: 6 };
    const height = pad.top + pad.bottom + rowHeight * hits.length;
    let low = 0;
    let high = 0;
    const stacks = hits.map((hit) => {
      const parts = hit.parts || { vector: hit.score };
      let positive = 0;
      let negative = 0;
      const segments = [];
      for (const name of PARTS) {
        const value = Number(parts[name] || 0);
        if (value === 0) continue;
        const from = value > 0 ? positive : negative;
        const to = from + value;
        if (value > 0) positive = to;
        else negative = to;
        segments.push({ name, from, to, value });
      }
      low = Math.min(low, negative, hit.score);
      high = Math.max(high, positive, hit.score);
      return { hit, segments };
    });
    const span = Math.max(high - low, 1e-9);
    const x = (value) => pad.left + ((value - low) / span) * (width - pad.left - pad.right);
    const chart = svg("svg", {
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": "Each result's score as the sum of its parts",
      "data-chart": "scores",
      "data-bars": hits.length,
    });
    stacks.forEach(({ hit, segments }, rank) => {
      const top = pad.top + rank * rowHeight + 3;
      chart.append(svg("text", { class: "tick", x: pad.left - 8, y: top + 12, "text-anchor": "end" }, `#${rank + 1}`));
      for (const part of segments) {
        const left = Math.min(x(part.from), x(part.to));
        const rect = svg("rect", {
          class: `seg-${part.name}`,
          x: left,
          y: top,
          width: Math.max(1, Math.abs(x(part.to) - x(part.from))),
          height: rowHeight - 6,
          rx: 2,
        });
        rect.append(svg("title", {}, `${part.name}: ${fixed(part.value)}`));
        chart.append(rect);
      }
      chart.append(svg("line", { class: "score-mark", x1: x(hit.score), x2: x(hit.score), y1: top - 2, y2: top + rowHeight - 4 }));
      chart.append(svg("text", { class: "tick", x: width - pad.right + 6, y: top + 12 }, fixed(hit.score)));
    });
    chart.append(svg("line", { class: "zero", x1: x(0), x2: x(0), y1: pad.top, y2: height - pad.bottom }));
    const legend = el(
      "div",
      { class: "legend" },
      ...PARTS.map((name) => el("span", {}, el("i", { class: name }), name)),
      el("span", {}, el("i", { class: "mark" }), "score"),
    );
    $("q-chart").replaceChildren(legend, chart);
  }

  // -- wiring ----------------------------------------------------------------------------------------------------

  function useKey() {
    const value = $("key-input").value.trim();
    $("key-input").value = "";
    if (!value) return;
    state.key = value;
    sessionStorage.setItem(KEY_STORAGE, value);
    state.page = 1;
    connect();
  }

  function forgetKey() {
    state.key = "";
    sessionStorage.removeItem(KEY_STORAGE);
    state.session = null;
    show($("detail-body"), false);
    show($("detail-empty"), true);
    connect();
  }

  function applyFilters() {
    state.namespace = $("filter-namespace").value.trim();
    state.user = $("filter-user").value.trim();
    state.page = 1;
    loadSessions();
  }

  const onEnter = (id, action) =>
    $(id).addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        action();
      }
    });

  document.addEventListener("DOMContentLoaded", () => {
    $("key-use").addEventListener("click", useKey);
    onEnter("key-input", useKey);
    $("key-forget").addEventListener("click", forgetKey);
    $("filter-apply").addEventListener("click", applyFilters);
    onEnter("filter-namespace", applyFilters);
    onEnter("filter-user", applyFilters);
    $("page-prev").addEventListener("click", () => {
      state.page = Math.max(1, state.page - 1);
      loadSessions();
    });
    $("page-next").addEventListener("click", () => {
      if (state.nextPage) state.page = Number(state.nextPage);
      loadSessions();
    });
    $("d-refresh").addEventListener("click", () => state.session && openSession(state.session));
    $("d-delete").addEventListener("click", askDelete);
    $("confirm-cancel").addEventListener("click", () => $("confirm-delete").close());
    $("confirm-ok").addEventListener("click", deleteSession);
    $("append-send").addEventListener("click", appendMessage);
    $("q-go").addEventListener("click", search);
    onEnter("q-text", search);
    connect();
  });
})();
