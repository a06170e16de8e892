// The dashboard page: `/` lists the boards the viewer may see; `/boards/{slug}` draws one
// board live. A viewer token comes in the URL (`?token=…`); public boards need none. A page
// that must outlive its token names where fresh ones come from: `?refresh=parent` (it is
// framed, and asks its parent with `postMessage`) or `?token_url=/path` (a same-origin
// endpoint it POSTs to, one of those the operator allows). Either way no key ever reaches
// the browser.
import { Switchboard } from "/static/switchboard.js";
import { Rewind } from "/static/rewind.js";

const params = new URLSearchParams(location.search);
let token = params.get("token");
const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function showMessage(text) {
  const box = $("message");
  box.textContent = text;
  box.hidden = false;
}

// ---- where fresh tokens come from ---------------------------------------------------------

const PARENT_TIMEOUT = 5000; // ms the embedding page has to answer a token request
const TOKEN_URL_TIMEOUT = 10000;

/** The paths the operator allows as token endpoints (`SWITCHBOARD_DASHBOARD_TOKEN_URLS`), as
 * the server wrote them into this page; none when it wrote nothing. Never from the link. */
function allowedTokenUrls() {
  try {
    const meta = document.querySelector('meta[name="switchboard-token-urls"]');
    const list = JSON.parse(meta ? meta.content : "[]");
    return Array.isArray(list) ? list.filter((item) => typeof item === "string") : [];
  } catch {
    return [];
  }
}

/** `?token_url=` as a URL, or null with the reason shown. The link only picks one of the
 * operator's token endpoints, exactly as the server listed it: a crafted link cannot make the
 * page POST (with the viewer's cookies) to any other path of this origin, nor anywhere else.
 * Each must still be a path ("/…", not "//host" or "/\host", which browsers read as another
 * host) that resolves on this origin. */
function allowedTokenUrl(value) {
  const allowed = allowedTokenUrls();
  let url = null;
  if (allowed.includes(value) && /^\/(?![\/\\])/.test(value)) {
    try { url = new URL(value, location.origin); } catch { url = null; }
  }
  if (url && url.origin === location.origin) return url.href;
  showMessage(allowed.length
    ? `token_url refused: this server's token endpoints are ${allowed.join(", ")}.`
    : "token_url refused: this server allows no token endpoint (SWITCHBOARD_DASHBOARD_TOKEN_URLS).");
  return null;
}

/** A fresh token from a POST to `url` (this origin, with its cookies), answering JSON
 * `{"token": "…"}`; redirects are refused, so the request cannot be bounced elsewhere. */
async function tokenFromUrl(url, slug) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    redirect: "error",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ board: slug }),
    signal: AbortSignal.timeout(TOKEN_URL_TIMEOUT),
  });
  if (!response.ok) throw new Error(`token_url answered ${response.status}`);
  const body = await response.json();
  if (typeof body.token !== "string" || !body.token) throw new Error("token_url sent no token");
  return body.token;
}

let asking = null; // the token request to the parent in flight, shared by every caller

/** A fresh token from the page that frames this one: ask with a message that holds no secret
 * (so any target, "*", is safe), and take only a `{type: "switchboard:token", token}` reply
 * from `window.parent` itself — a message from any other window (a sibling frame, a popup,
 * the page's own scripts) is ignored. The parent can only hand over tokens it holds; the
 * page never posts a token or board data out. */
function tokenFromParent(slug) {
  if (asking) return asking;
  asking = new Promise((resolve, reject) => {
    const done = () => { clearTimeout(timer); removeEventListener("message", onMessage); asking = null; };
    const timer = setTimeout(() => { done(); reject(new Error("the embedding page sent no token")); }, PARENT_TIMEOUT);
    function onMessage(event) {
      const data = event.data;
      if (event.source !== window.parent || !data || data.type !== "switchboard:token") return;
      if (typeof data.token !== "string" || !data.token) return;
      done();
      resolve(data.token);
    }
    addEventListener("message", onMessage);
    window.parent.postMessage({ type: "switchboard:token-request", board: slug }, "*");
  });
  return asking;
}

/** `getToken` for this page's URL: null when the page keeps the token it was given, false
 * when the URL asks for something refused (the page then shows why and goes no further). */
function tokenSource(slug) {
  if (params.has("token_url")) {
    const url = allowedTokenUrl(params.get("token_url"));
    return url ? () => tokenFromUrl(url, slug) : false;
  }
  if (params.get("refresh") === "parent") {
    if (window.parent !== window) return () => tokenFromParent(slug);
    showMessage("refresh=parent needs this page to be embedded in a frame.");
  }
  return null;
}

/** When `value` (a JWT) expires, in ms since the epoch; null if it does not say. */
function expiry(value) {
  try {
    const payload = JSON.parse(atob(value.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return typeof payload.exp === "number" ? payload.exp * 1000 : null;
  } catch {
    return null;
  }
}

/** Take a fresh token: it is the one the page uses from now on, links included. */
function useToken(fresh) {
  token = fresh;
  for (const link of document.querySelectorAll("a.board-card")) link.href = boardLink(link.dataset.slug);
  return fresh;
}

/** A link to a board that carries this page's token and where it gets fresh ones. */
function boardLink(slug) {
  const query = new URLSearchParams();
  if (token) query.set("token", token);
  for (const name of ["refresh", "token_url"]) if (params.has(name)) query.set(name, params.get(name));
  return query.toString() ? `/boards/${slug}?${query}` : `/boards/${slug}`;
}

const LABELS = {
  connecting: "connecting…", live: "live", reconnecting: "reconnecting…", offline: "offline",
  failed: "offline", missing: "not found", listed: "not live",
};

/** Show the page's connection state: a word, a coloured dot, and `data-state` for scripts. */
function showState(state, label = LABELS[state] || state, title = "") {
  const node = $("connection");
  node.dataset.state = state;
  node.title = title;
  node.querySelector("span").textContent = label;
}

// ---- the list of boards -------------------------------------------------------------------

async function showBoards() {
  $("title").textContent = "Boards";
  showState("connecting", "loading…");
  const getToken = tokenSource(null);
  if (getToken === false) return;
  // The token in use now (fetched first when there is none, or it is about to expire).
  const current = async () => {
    const left = token ? (expiry(token) ?? Infinity) - Date.now() : -Infinity;
    if (getToken && left < 5000) useToken(await getToken());
    return token;
  };
  const list = $("boards");
  let shown = 0;
  // One page at a time, following `next_cursor` until it is null (the server may cut
  // `limit` to its SWITCHBOARD_PAGE_LIMIT_MAX): every board is listed, however many.
  let cursor = null;
  do {
    const query = new URLSearchParams({ limit: "500" });
    if (cursor) query.set("cursor", cursor);
    const credential = await current().catch(() => token);
    const headers = credential ? { Authorization: `Bearer ${credential}` } : {};
    const response = await fetch(`/api/boards?${query}`, { headers });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      showState("offline", "failed");
      return showMessage(body.error ? body.error.message : `Error ${response.status}`);
    }
    const page = await response.json();
    for (const board of page.items) {
      const card = el("a", { className: "board-card", href: boardLink(board.slug) },
        el("small", { textContent: board.public ? "public" : "private" }),
        el("strong", { textContent: board.title || board.slug }),
        el("span", { className: "empty", textContent: board.description || "" }));
      card.dataset.slug = board.slug;
      list.append(card);
    }
    shown += page.items.length;
    list.hidden = shown === 0;
    cursor = page.next_cursor;
  } while (cursor);
  $("updated").textContent = `listed ${new Date().toLocaleTimeString()}`;
  if (shown) return followBoards([...list.querySelectorAll("a.board-card")], getToken);
  // Nothing to follow: the (empty) list is as fetched, not live.
  showState("listed", "not live", "This list is loaded once: reload the page to see boards added since.");
  showMessage("No boards to show. Public boards appear here; private ones need a viewer token in the URL.");
}

// ---- the live index: each card's widget count, last change and status summary -------------

const LIVE_BOARDS = 100; // SWITCHBOARD_WS_MAX_SUBSCRIPTIONS' default: what one connection may follow

/** "just now", "40 s ago", "2 min ago", "3 h ago", "5 d ago". */
function ago(at, now = Date.now()) {
  const seconds = Math.max(0, Math.round((now - at) / 1000));
  if (seconds < 10) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

/** When the board last changed, in ms, as far as its snapshot tells: its own fields' or a
 * widget's latest `updated_at`. */
function lastChange(state) {
  const times = [state.board, ...state.widgets.values()].map((item) => Date.parse(item && item.updated_at));
  return Math.max(0, ...times.filter((t) => !Number.isNaN(t)));
}

/** How many status widgets are ok, warn, bad or unknown (coloured as on the board). */
function statusCounts(state) {
  const counts = { ok: 0, warn: 0, bad: 0, none: 0 };
  for (const widget of state.widgets.values()) {
    if (widget.kind === "status") counts[statusClass(widget.value, widget.config)] += 1;
  }
  return counts;
}

/** A card's live part, added under its title: widget count, last change, status summary,
 * and whether the card itself is live. */
function cardStats(card) {
  let stats = card.querySelector(".card-stats");
  if (!stats) {
    stats = el("div", { className: "card-stats" },
      el("span", { className: "count" }),
      el("time", { className: "changed" }),
      el("span", { className: "summary" }),
      el("span", { className: "live-mark" }));
    card.append(stats);
  }
  return stats;
}

/** Show `state` on its card: counts, when it last changed (`at`, ms), the status summary. */
function showCard(card, state, at) {
  const stats = cardStats(card);
  const count = state.widgets.size;
  stats.querySelector(".count").textContent = `${count} widget${count === 1 ? "" : "s"}`;
  stats.querySelector(".count").dataset.count = String(count);
  const changed = stats.querySelector(".changed");
  if (at) {
    changed.dateTime = new Date(at).toISOString();
    changed.title = new Date(at).toLocaleString();
    changed.textContent = `changed ${ago(at)}`;
  }
  const counts = statusCounts(state);
  const summary = stats.querySelector(".summary");
  Object.assign(summary.dataset, { ok: counts.ok, warn: counts.warn, bad: counts.bad, unknown: counts.none });
  summary.replaceChildren(...Object.entries(counts).filter(([, n]) => n > 0).map(([name, n]) =>
    el("span", { className: `dot ${name}`, textContent: `${n} ${name === "none" ? "unknown" : name}` })));
}

/** Mark a card live or not, saying why not in words and in its `title`. */
function markCard(card, live, why = "") {
  card.dataset.live = String(live);
  const mark = cardStats(card).querySelector(".live-mark");
  mark.textContent = live ? "" : why;
  mark.title = live ? "" : why;
}

/** Follow the listed boards live over one WebSocket: the first LIVE_BOARDS of them (one
 * subscription each, the server's default cap per connection); the rest say they are not
 * live, and take a freed place when a followed board is deleted. The header is `live` when
 * the socket is and every followed board's subscription is confirmed. Boards created after
 * the list was fetched appear on reload. */
function followBoards(cards, getToken) {
  const bySlug = new Map(cards.map((card) => [card.dataset.slug, card]));
  const waiting = cards.map((card) => card.dataset.slug);
  const followed = new Map(); // slug → { seq, at }: the last seq shown, the last change (ms)
  const confirmed = new Set(); // followed slugs subscribed since the socket last opened
  const deleted = new Set();
  let socket = "connecting";
  const client = new Switchboard({
    token,
    getToken: getToken && (async () => useToken(await getToken())),
    onStatus: (status) => {
      socket = status.state;
      if (socket !== "live") confirmed.clear();
      if (status.state === "failed") showMessage(`Disconnected: ${status.reason}.`);
      showIndexState();
    },
  });

  function showIndexState() {
    const live = socket === "live" && confirmed.size === followed.size;
    const listed = bySlug.size - deleted.size;
    for (const [slug, card] of bySlug) {
      if (followed.has(slug)) markCard(card, live && confirmed.has(slug), socket === "live" ? "syncing…" : "not live");
    }
    if (!live) return showState(socket === "live" ? "connecting" : socket, socket === "live" ? "syncing…" : undefined);
    if (followed.size === listed) return showState("live", "live", `${listed} boards followed live`);
    showState("live", `live · ${followed.size} of ${listed} boards`,
      `One connection follows at most ${LIVE_BOARDS} boards: the others show what they had, not live; open one to see it live.`);
  }

  function follow(slug) {
    followed.set(slug, { seq: null, at: 0 });
    const card = bySlug.get(slug);
    client.subscribe(slug, {
      onChange: (state) => {
        const seen = followed.get(slug);
        if (!seen) return;
        if (state.board && state.board.deleted) return gone(slug, "deleted");
        // An event next in line moves "last change" to its time; a snapshot tells it itself.
        const event = seen.seq !== null && state.seq === seen.seq + 1;
        seen.at = event ? Math.max(seen.at, lastChange(state), state.updatedAt.getTime()) : lastChange(state);
        seen.seq = state.seq;
        showCard(card, state, seen.at);
      },
      onSubscribed: () => { confirmed.add(slug); showIndexState(); },
      onError: (error) => (error.code === "too_many_subscriptions" ? gone(slug, "not live", false)
        : gone(slug, error.code === "not_found" ? "deleted" : error.message)),
    });
  }

  /** `slug` is no longer followed (deleted, no longer readable, refused): say so on its
   * card, and give its place to the next board waiting (unless the server refused the
   * place itself: it caps subscriptions per connection below this page's LIVE_BOARDS). */
  function gone(slug, why, freed = true) {
    client.unsubscribe(slug);
    followed.delete(slug);
    confirmed.delete(slug);
    const card = bySlug.get(slug);
    if (why === "deleted") {
      deleted.add(slug);
      card.classList.add("deleted");
      card.dataset.deleted = "";
    }
    markCard(card, false, why);
    if (!freed) waiting.unshift(slug); // its turn comes when a place is freed
    else if (waiting.length) follow(waiting.shift());
    showIndexState();
  }

  for (const slug of waiting.splice(0, LIVE_BOARDS)) follow(slug);
  for (const slug of waiting) markCard(bySlug.get(slug), false, "not live");
  showIndexState();
  setInterval(() => {
    for (const [slug, seen] of followed) {
      const changed = seen.at && bySlug.get(slug).querySelector(".card-stats .changed");
      if (changed) changed.textContent = `changed ${ago(seen.at)}`;
    }
  }, 5000);
  window.switchboard = client; // for debugging from the console
}

// ---- one board ----------------------------------------------------------------------------

const previous = new Map(); // widget key → last numeric value, for the change indicator
const charts = new Map(); // widget key → { chart (uPlot), destroy() }

function fmt(value) {
  if (typeof value !== "number") return value === null || value === undefined ? "—" : String(value);
  return Math.abs(value) >= 1000 ? value.toLocaleString(undefined, { maximumFractionDigits: 1 })
    : String(Math.round(value * 100) / 100);
}

function statusClass(value, config) {
  const colours = (config && config.colors) || {};
  const text = String(value ?? "").toLowerCase();
  if (colours[text]) return colours[text];
  if (["ok", "up", "healthy", "green", "pass", "running", "online"].includes(text)) return "ok";
  if (["warn", "warning", "degraded", "slow", "amber", "pending"].includes(text)) return "warn";
  if (["down", "error", "fail", "failed", "critical", "crit", "red", "offline"].includes(text)) return "bad";
  return "none";
}

function gaugeColour(value, config) {
  const t = config.thresholds || {};
  if (t.crit !== undefined && value >= t.crit) return "var(--bad)";
  if (t.warn !== undefined && value >= t.warn) return "var(--warn)";
  return "var(--ok)";
}

/** "▲ +3 since previous": how a number moved. */
function delta(change) {
  const kind = change > 0 ? "up" : change < 0 ? "down" : "flat";
  const arrow = change > 0 ? "▲" : change < 0 ? "▼" : "■";
  return el("div", { className: `delta ${kind}`, textContent: `${arrow} ${change > 0 ? "+" : ""}${fmt(change)} since previous` });
}

/** A table cell or list value as text: numbers formatted, true/false as ✓/✗, null empty. */
function cellText(value) {
  if (value === null) return "";
  if (typeof value === "boolean") return value ? "✓" : "✗";
  return typeof value === "number" ? fmt(value) : value;
}

/** A leaderboard's items in `sort` order ("asc"/"desc" by value, numbers before the rest;
 * absent: as written). */
function ranked(items, sort) {
  if (sort !== "asc" && sort !== "desc") return items;
  const sign = sort === "asc" ? 1 : -1;
  const key = (item) => (typeof item.value === "number" ? item.value : null);
  return [...items].sort((a, b) => {
    if (key(a) === null || key(b) === null) return (key(a) === null) - (key(b) === null);
    return sign * (key(a) - key(b));
  });
}

/** The recent values as an inline SVG line (no axes: the number above is the reading). */
function sparkline(values) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "sparkline");
  svg.setAttribute("viewBox", "0 0 100 30");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.dataset.points = String(values.length);
  if (values.length) {
    const low = Math.min(...values), high = Math.max(...values), span = high - low || 1;
    const x = (i) => (values.length === 1 ? 50 : (i / (values.length - 1)) * 100);
    const y = (v) => (high === low ? 15 : 28 - ((v - low) / span) * 26);
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", values.map((v, i) => `${x(i).toFixed(2)},${y(v).toFixed(2)}`).join(" "));
    line.setAttribute("vector-effect", "non-scaling-stroke");
    svg.append(line);
  }
  return svg;
}

const draw = {
  number(w, body) {
    const unit = w.config.unit ? el("span", { className: "unit", textContent: w.config.unit }) : null;
    body.append(el("div", { className: "big" }, fmt(w.value), unit));
    const before = previous.get(w.key);
    if (typeof w.value === "number" && typeof before === "number") body.append(delta(w.value - before));
  },
  trend(w, body) {
    const points = Array.isArray(w.value) ? w.value : [];
    const values = points.map((p) => p.v);
    const unit = w.config.unit ? el("span", { className: "unit", textContent: w.config.unit }) : null;
    body.append(el("div", { className: "big" }, fmt(values.at(-1) ?? null), unit));
    if (values.length > 1) body.append(delta(values.at(-1) - values.at(-2)));
    body.append(sparkline(values));
  },
  table(w, body) {
    if (!w.value) return body.append(el("div", { className: "text empty", textContent: "no rows yet" }));
    // A column of numbers (empty cells aside) is right-aligned, its heading too.
    const numeric = w.value.columns.map((_, i) => w.value.rows.some((r) => typeof r[i] === "number")
      && w.value.rows.every((r) => r[i] === null || typeof r[i] === "number"));
    const head = el("tr", {}, ...w.value.columns.map((c, i) =>
      el("th", { scope: "col", className: numeric[i] ? "num" : "", textContent: c })));
    const rows = w.value.rows.map((row) => el("tr", {}, ...row.map((cell) =>
      el("td", { className: typeof cell === "number" ? "num" : "", textContent: cellText(cell) }))));
    body.append(el("div", { className: "table-wrap" },
      el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows))));
  },
  list(w, body) {
    const items = ranked(w.value || [], w.config.sort);
    if (!items.length) return body.append(el("div", { className: "text empty", textContent: "no items yet" }));
    const top = Math.max(0, ...items.map((i) => (typeof i.value === "number" ? i.value : 0)));
    body.append(el("ol", { className: "ranking" }, ...items.map((item) => {
      const bar = el("div", { className: "share" });
      bar.style.width = typeof item.value === "number" && top > 0 ? `${Math.max(0, item.value / top) * 100}%` : "0";
      return el("li", {}, el("span", { className: "name", textContent: item.label }),
        el("span", { className: "num", textContent: cellText(item.value ?? null) }), bar);
    })));
  },
  gauge(w, body) {
    const min = w.config.min ?? 0, max = w.config.max ?? 100;
    const unit = w.config.unit ? el("span", { className: "unit", textContent: w.config.unit }) : null;
    body.append(el("div", { className: "big" }, fmt(w.value), unit));
    const share = typeof w.value === "number" ? Math.max(0, Math.min(1, (w.value - min) / (max - min))) : 0;
    const fill = el("div");
    fill.style.width = `${share * 100}%`;
    fill.style.background = typeof w.value === "number" ? gaugeColour(w.value, w.config) : "transparent";
    body.append(el("div", { className: "bar" }, fill),
      el("div", { className: "range" }, el("span", { textContent: fmt(min) }), el("span", { textContent: fmt(max) })));
  },
  status(w, body) {
    body.append(el("span", { className: `badge ${statusClass(w.value, w.config)}`, textContent: w.value ?? "unknown" }));
  },
  text(w, body) {
    body.append(el("div", { className: w.value ? "text" : "text empty", textContent: w.value || "no text yet" }));
  },
  series(w, body) {
    const points = Array.isArray(w.value) ? w.value : [];
    const last = points.length ? points[points.length - 1].v : null;
    const unit = w.config.unit ? el("span", { className: "unit", textContent: w.config.unit }) : null;
    body.append(el("div", { className: "big" }, fmt(last), unit));
    const holder = el("div", { className: "chart" });
    body.append(holder);
    requestAnimationFrame(() => {
      if (!holder.isConnected) return; // redrawn again before this frame
      charts.get(w.key)?.destroy();
      charts.set(w.key, drawChart(holder, points));
    });
  },
};

// ---- series charts ------------------------------------------------------------------------

const CHART_HEIGHT = 150;

/** The x range: the data's, widened around a lone point (a minute each side in time, one
 * step by index). uPlot itself gives one timestamp 86400 / 1e-3 seconds, about 3 years. */
function xRange(byTime) {
  return (u, min, max) => {
    const xs = u.data[0];
    if (!xs.length) return [0, 1];
    const pad = byTime ? 60 : 1;
    return xs.length === 1 ? [xs[0] - pad, xs[0] + pad] : [min, max];
  };
}

/** The y range: the data's plus a tenth of headroom, and room around a flat line, so the
 * axis always has several labels. */
function yRange(u, min, max) {
  if (min === null) return [0, 1];
  const pad = min === max ? Math.abs(min) * 0.1 || 1 : (max - min) * 0.1;
  return [min - pad, max + pad];
}

/** Time labels in the viewer's locale, as precise as the visible span needs. */
function timeLabels(u, splits) {
  const span = u.scales.x.max - u.scales.x.min;
  const parts = span > 3 * 86400 ? { month: "short", day: "numeric" }
    : span > 86400 ? { weekday: "short", hour: "numeric", minute: "2-digit" }
    : span > 600 ? { hour: "numeric", minute: "2-digit" }
    : { hour: "numeric", minute: "2-digit", second: "2-digit" };
  const format = new Intl.DateTimeFormat(undefined, parts);
  return splits.map((t) => format.format(new Date(t * 1000)));
}

/** A uPlot chart of `points` in `holder`, sized to it (and resized with it). The labels each
 * axis last drew are in `holder.dataset.xLabels`/`yLabels` (JSON), for tests and tools. */
function drawChart(holder, points) {
  const times = points.map((p) => Date.parse(p.t) / 1000);
  // Points appended together share a time: then draw them in order rather than by time.
  const byTime = times.every((t, i) => i === 0 || t > times[i - 1]);
  const data = [byTime ? times : points.map((_, i) => i), points.map((p) => p.v)];
  const recorded = (name, labels) => { holder.dataset[name] = JSON.stringify(labels); return labels; };
  const xLabels = byTime ? timeLabels : (u, splits) => splits.map((i) => String(i + 1));
  const axis = { stroke: "#8b98a7", grid: { stroke: "#263241" }, ticks: { stroke: "#263241" } };
  const chart = new uPlot({
    width: holder.clientWidth || 300, height: CHART_HEIGHT, legend: { show: false }, cursor: { show: false },
    padding: [8, 48, 0, 0], // room on the right for the last time label, which centres on its tick
    scales: { x: { time: byTime, range: xRange(byTime) }, y: { range: yRange } },
    axes: [
      { ...axis, space: 80, values: (u, splits) => recorded("xLabels", xLabels(u, splits)),
        ...(byTime ? {} : { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000] }) },
      { ...axis, space: 24, size: 52, values: (u, splits) => recorded("yLabels", splits.map(fmt)) },
    ],
    series: [{}, { stroke: "#58a6ff", width: 2, fill: "rgba(88,166,255,0.12)", points: { show: points.length < 3 } }],
  }, data, holder);
  const observer = new ResizeObserver(() => {
    if (holder.clientWidth && holder.clientWidth !== chart.width) chart.setSize({ width: holder.clientWidth, height: CHART_HEIGHT });
  });
  observer.observe(holder);
  return { chart, destroy: () => { observer.disconnect(); chart.destroy(); } };
}

function renderWidget(w) {
  const old = charts.get(w.key);
  if (old) { old.destroy(); charts.delete(w.key); }
  const tile = el("article", { className: `tile kind-${w.kind}` });
  tile.dataset.key = w.key;
  tile.dataset.kind = w.kind;
  const body = el("div", { className: "body" });
  tile.append(el("div", { className: "label", textContent: w.title || w.key }), body);
  (draw[w.kind] || draw.text)(w, body, tile);
  if (typeof w.value === "number") previous.set(w.key, w.value);
  return tile;
}

// What the board page knows about its own state: the socket's, whether this board's
// subscription is in place since the socket last opened, and whether the board is gone.
const view = { socket: "connecting", synced: false, missing: false, state: null };

/** Show the board's real state: `live` only once the board itself is subscribed on an open
 * socket. While not live, values already on screen are stale: dimmed, "last updated …". */
function showBoardState() {
  if (view.missing) return;
  const live = view.socket === "live" && view.synced;
  if (live) showState("live");
  else if (view.socket === "live") showState("connecting", "syncing…");
  else showState(view.socket);
  const grid = $("grid");
  const stale = !live && view.state !== null;
  grid.classList.toggle("stale", stale);
  grid.toggleAttribute("data-stale", stale);
  const at = view.state && view.state.updatedAt;
  $("updated").textContent = at ? `${stale ? "last updated" : "updated"} ${at.toLocaleTimeString()}` : "";
}

function onSocket(status) {
  view.socket = status.state;
  if (status.state !== "live") view.synced = false;
  if (status.state === "failed") showMessage(`Disconnected: ${status.reason}.`);
  showBoardState();
}

/** The lines that add a first widget to `slug`, for a board with none. */
function firstWidgetHint(slug) {
  const origin = location.origin;
  const curl = `curl -X PUT ${origin}/api/boards/${slug}/widgets/first \\\n`
    + `  -H "Authorization: Bearer $SWITCHBOARD_TOKEN" -H 'content-type: application/json' \\\n`
    + `  -d '{"kind": "number", "title": "First widget", "value": 1}'`;
  const push = `switchboard push ${slug} first 2 --url ${origin}`;
  const line = (text) => {
    const copy = el("button", { type: "button", className: "copy", textContent: "copy" });
    copy.addEventListener("click", () => navigator.clipboard.writeText(text).then(
      () => { copy.textContent = "copied"; }, () => { copy.textContent = "select and copy"; }));
    return el("div", { className: "line" }, el("pre", {}, el("code", { textContent: text })), copy);
  };
  return [
    el("p", { textContent: "This board has no widgets yet. Add the first one with a key that may write to it (SWITCHBOARD_TOKEN):" }),
    line(curl),
    el("p", { textContent: "then change its value from a shell or a script:" }),
    line(push),
  ];
}

function render(state, changed) {
  $("grid").hidden = false;
  $("message").hidden = true;
  view.state = state;
  if (changed === null) view.synced = true; // a snapshot: the board is subscribed
  showBoardState();
  if (rewound(state)) return;
  drawBoard(state, changed);
}

/** Draw the live board: `changed` is the key(s) an event changed, null for all of it. */
function drawBoard(state, changed) {
  const grid = $("grid");
  const hint = $("hint");
  if (state.board && state.board.deleted) {
    grid.replaceChildren();
    hint.hidden = true;
    return showMessage("This board was deleted.");
  }
  $("title").textContent = (state.board && (state.board.title || state.board.slug)) || "";
  document.title = `${$("title").textContent} · Switchboard`;
  const empty = state.widgets.size === 0;
  if (empty && hint.hidden) hint.replaceChildren(...firstWidgetHint(state.slug));
  hint.hidden = !empty;
  const tiles = new Map([...grid.children].map((t) => [t.dataset.key, t]));
  if (changed === null) { // snapshot or board change: draw everything again
    grid.replaceChildren(...[...state.widgets.values()].map(renderWidget));
  } else {
    for (const key of Array.isArray(changed) ? changed : [changed]) redrawWidget(state, tiles, key);
  }
  applyLayout(grid, state);
}

function redrawWidget(state, tiles, key) {
  const widget = state.widgets.get(key);
  const old = tiles.get(key);
  if (!widget) {
    charts.get(key)?.destroy();
    charts.delete(key);
    if (old) old.remove();
    return;
  }
  const tile = renderWidget(widget);
  if (old) old.replaceWith(tile); else $("grid").append(tile);
  tile.classList.add("flash");
  setTimeout(() => tile.classList.remove("flash"), 900);
}

// ---- layout: the tiles' order and sizes, from the board's `layout` ------------------------

const DEFAULT_SPAN = { series: { w: 2, h: 1 }, table: { w: 2, h: 1 } }; // others: 1 × 1
const ONE_BY_ONE = { w: 1, h: 1 };

/** The tiles in order, each with the columns (`w`) and rows (`h`) it spans: the widgets the
 * board's `layout` names, in its order, then the others as the board has them (creation
 * order). A size left out (null) is the kind's default; entries for keys not on the board
 * (not yet, or no more) are kept by the server and skipped here. */
function arrangement(state) {
  const layout = state.board && Array.isArray(state.board.layout) ? state.board.layout : [];
  const placed = [];
  const named = new Set();
  for (const entry of layout) {
    const widget = state.widgets.get(entry.key);
    if (!widget || named.has(entry.key)) continue;
    named.add(entry.key);
    const size = DEFAULT_SPAN[widget.kind] || ONE_BY_ONE;
    placed.push({ key: entry.key, w: entry.w ?? size.w, h: entry.h ?? size.h });
  }
  for (const widget of state.widgets.values()) {
    if (!named.has(widget.key)) placed.push({ key: widget.key, ...(DEFAULT_SPAN[widget.kind] || ONE_BY_ONE) });
  }
  return placed;
}

/** How many columns the grid has at its width now (the CSS decides: 260 px or more each). */
function gridColumns(grid) {
  const tracks = getComputedStyle(grid).gridTemplateColumns;
  return tracks && tracks !== "none" ? tracks.trim().split(/\s+/).length : 1;
}

/** Put the tiles in the layout's order (moving only those out of place, so charts and
 * scroll positions stay), each spanning its rows and its columns — at most as many as the
 * grid has, so a wide tile on a phone takes the one column rather than overflowing it.
 * `data-w`/`data-h` are the sizes asked for, `data-span` the columns spanned now. */
function applyLayout(grid, state) {
  const tiles = new Map([...grid.children].map((tile) => [tile.dataset.key, tile]));
  const columns = gridColumns(grid);
  grid.dataset.columns = String(columns);
  let before = null;
  for (const { key, w, h } of arrangement(state)) {
    const tile = tiles.get(key);
    if (!tile) continue;
    const span = Math.min(w, columns);
    Object.assign(tile.dataset, { w: String(w), h: String(h), span: String(span) });
    tile.style.gridColumn = `span ${span}`;
    tile.style.gridRow = `span ${h}`;
    const expected = before ? before.nextElementSibling : grid.firstElementChild;
    if (expected !== tile) (before ? before.after(tile) : grid.prepend(tile));
    before = tile;
  }
}

/** Clamp the spans again whenever the grid gains or loses a column (window resized, phone
 * turned): the layout asks for sizes, the width decides how many columns there are. */
function followColumns(grid) {
  new ResizeObserver(() => {
    const shown = past || view.state;
    if (shown && String(gridColumns(grid)) !== grid.dataset.columns) applyLayout(grid, shown);
  }).observe(grid);
}

// ---- rewind: the board as it was (the scrubber is rewind.js) ---------------------------------

let rewinder = null;
let past = null; // the board drawn from the past, laid out as it was (null: the live one)
let livePrevious = null; // the change indicator's values while the past is on screen

/** Whether the page shows the past: then events only stretch the scrubber, and the live
 * BoardState (still applying them) is drawn again when the viewer returns to live. */
function rewound(state) {
  if (!rewinder) {
    rewinder = new Rewind({ slug: state.slug, headers: authHeaders, show: drawPast, live: drawLive });
    rewinder.start(state.seq).catch(() => {}); // no scrubber: the page stays live
    return false;
  }
  rewinder.moved(state.seq);
  if (state.board && state.board.deleted) rewinder.toLive();
  return rewinder.viewing !== null;
}

function authHeaders() {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** A past board (`GET …?at=`): drawn like the live one, marked as history, deltas off. */
function drawPast(board) {
  if (!livePrevious) livePrevious = new Map(previous);
  previous.clear();
  const grid = $("grid");
  grid.classList.add("history");
  grid.dataset.history = String(board.seq);
  $("hint").hidden = true;
  $("title").textContent = board.title || board.slug;
  grid.replaceChildren(...board.widgets.map(renderWidget));
  past = { board, widgets: new Map(board.widgets.map((w) => [w.key, w])) };
  applyLayout(grid, past); // as it was laid out then
}

function drawLive() {
  past = null;
  const grid = $("grid");
  grid.classList.remove("history");
  delete grid.dataset.history;
  if (livePrevious) {
    previous.clear();
    for (const [key, value] of livePrevious) previous.set(key, value);
    livePrevious = null;
  }
  if (view.state) drawBoard(view.state, null);
}

async function showBoard(slug) {
  followColumns($("grid"));
  $("title").textContent = slug;
  const source = tokenSource(slug);
  if (source === false) return showState("offline", "not connected");
  const getToken = source && (async () => useToken(await source()));
  if (getToken && !token) await getToken().catch((error) => showMessage(`No token: ${error.message}.`));
  const client = new Switchboard({ token, getToken, onStatus: onSocket });
  client.subscribe(slug, {
    onChange: render,
    onSubscribed: () => { view.synced = true; showBoardState(); },
    onError: (error) => {
      // Missing or not readable with this token: say so, and stop (nothing will ever be live).
      view.missing = true;
      client.close();
      $("grid").hidden = true;
      $("hint").hidden = true;
      $("updated").textContent = "";
      showState("missing", error.code === "not_found" ? "not found" : "error");
      showMessage(error.code === "not_found"
        ? `Board “${slug}” does not exist, or it is private: open it with a viewer token (…/boards/${slug}?token=…).`
        : error.message);
    },
  });
  window.switchboard = client; // for debugging from the console
  window.switchboardCharts = charts; // widget key → { chart }: each series' uPlot
}

const match = location.pathname.match(/^\/boards\/([a-z0-9][a-z0-9-]{0,63})\/?$/);
(match ? showBoard(match[1]) : showBoards()).catch((error) => {
  showState("offline");
  showMessage(`Could not load: ${error.message}.`);
});
