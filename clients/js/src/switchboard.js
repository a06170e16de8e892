// Switchboard client: live boards over one WebSocket, and the REST API, for browsers and
// Node 20 (no dependencies; in Node, pass a WebSocket implementation such as `ws`'s).
//
//   import { Switchboard, SwitchboardRest } from "switchboard-live-client"; // or "/static/switchboard.js"
//   const sb = new Switchboard({ token, onStatus: (s) => console.log(s.state) });
//   const ops = sb.subscribe("ops");
//   ops.on("change", ({ board }) => render(board));
//
// It keeps each board's state from `snapshot` + `event` frames, resumes with `since` after
// any disconnect (jittered exponential backoff), takes a fresh snapshot on `reset`, pings
// to detect a dead connection, and stops (reporting why) when the credential is refused.
// With `getToken`, it refreshes a short-lived token in band (an `auth` frame) before it
// expires, and reconnects with a fresh one after a 4101 instead of stopping.
//
// The server serves this very file at /static/switchboard.js (the dashboard uses it); the
// npm package `switchboard-live-client` ships it with its TypeScript declarations.

// Close codes that retrying cannot fix: stop, and report `failed` with the reason.
const FATAL = new Map([
  [4101, "the credential is missing, invalid, expired or revoked"],
  [4103, "this page's origin is not allowed"],
  [1009, "a frame was too large"],
]);
// Close codes that ask the client to come back later (1008: it sent too many frames in a
// second; 1013: try again later; 4029: too many connections): reconnect after a long
// backoff, half to all of `maxBackoff`, however healthy the connection was.
const SLOW_DOWN = new Set([1008, 1013, 4029]);

// The `id` of the client's `auth` frames (board replies use the channel as their id).
const AUTH_ID = "auth";
// The `id` of a `presence` request is this prefix and the channel.
const PRESENCE_ID = "presence ";
const OPEN = 1; // WebSocket.OPEN, the same in every implementation

/** When a token expires (ms since the epoch), from a JWT's `exp`; null for an API key. */
function tokenExpiry(token) {
  const parts = token ? token.split(".") : [];
  if (parts.length !== 3) return null;
  try {
    const payload = JSON.parse(atob(parts[1].replace(/-/g, "+").replace(/_/g, "/")));
    return typeof payload.exp === "number" ? payload.exp * 1000 : null;
  } catch {
    return null;
  }
}

/** The page's origin, when there is a page (a browser); null in Node. */
function pageOrigin() {
  const where = globalThis.location;
  return where && where.host ? { protocol: where.protocol, host: where.host } : null;
}

/** The WebSocket URL: `url` as given (http(s)://host… becomes ws(s)://host/ws), or this
 * page's host; outside a browser a URL is required. */
function socketUrl(url) {
  if (url) {
    const http = /^(http)(s?):\/\/([^/?#]+)\/?$/.exec(url);
    return http ? `ws${http[2]}://${http[3]}/ws` : url;
  }
  const page = pageOrigin();
  if (!page) throw new TypeError("Switchboard: `url` is required outside a browser");
  return `${page.protocol === "https:" ? "wss" : "ws"}://${page.host}/ws`;
}

/** Run `listener(payload)`; an exception it throws is reported as uncaught (the page's
 * error handler, or Node's), without keeping the other listeners from running. */
function call(listener, payload) {
  try {
    listener(payload);
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}

/** Named events with any number of listeners each: `on` (returns a function that removes
 * the listener), `off`, and `once` (a promise of the next payload, or of the next that
 * passes `test`). */
export class Emitter {
  constructor() {
    this._listeners = new Map();
  }

  on(name, listener) {
    if (!this._listeners.has(name)) this._listeners.set(name, new Set());
    this._listeners.get(name).add(listener);
    return () => this.off(name, listener);
  }

  off(name, listener) {
    const listeners = this._listeners.get(name);
    if (listeners) listeners.delete(listener);
  }

  once(name, test = () => true) {
    return new Promise((resolve) => {
      const stop = this.on(name, (payload) => {
        if (!test(payload)) return;
        stop();
        resolve(payload);
      });
    });
  }

  _emit(name, payload) {
    for (const listener of [...(this._listeners.get(name) || [])]) call(listener, payload);
  }
}

/** One board's live state: the board, its widgets by key, and the last seq applied. */
export class BoardState {
  constructor(slug) {
    this.slug = slug;
    this.board = null;
    this.widgets = new Map();
    this.seq = null;
    this.updatedAt = null;
  }

  load(snapshot) {
    const { widgets, ...board } = snapshot.data;
    this.board = board;
    this.widgets = new Map(widgets.map((w) => [w.key, w]));
    this.seq = snapshot.seq;
    this.updatedAt = new Date();
  }

  /**
   * Apply one event; returns the widget key it touched, the list of keys for
   * `widgets.updated` (a batch), or null for board events.
   */
  apply(event) {
    const data = event.data;
    this.seq = event.seq;
    this.updatedAt = new Date(event.at || Date.now());
    switch (event.event) {
      case "widget.created":
      case "widget.updated":
        this.widgets.set(data.key, data);
        return data.key;
      case "widgets.updated":
        for (const widget of data.widgets) this.widgets.set(widget.key, widget);
        return data.widgets.map((widget) => widget.key);
      case "widget.deleted":
        this.widgets.delete(data.key);
        return data.key;
      case "widget.points": {
        const widget = this.widgets.get(data.key);
        if (widget) {
          const keep = (widget.config && widget.config.max_points) || 100;
          widget.value = [...(widget.value || []), ...data.points].slice(-keep);
        }
        return data.key;
      }
      case "board.deleted":
        this.board = { ...this.board, deleted: true };
        this.widgets.clear();
        return null;
      default: // board.created, board.updated
        this.board = { ...this.board, ...data };
        return null;
    }
  }
}

/**
 * One board watched by a `Switchboard`. `state`: `subscribing` (asked, or waiting for the
 * connection), `subscribed` (the server confirmed it: events flow), `unsubscribed` (by
 * `unsubscribe()`), `failed` (refused, or the board stopped being readable: `error` says
 * why). `board`: the board's `BoardState`. `viewers`: who watches it (identity → open
 * subscriptions), once `presence()` was asked. Events: `snapshot`, `event`, `change`,
 * `presence`, `state`, `error`.
 */
export class Subscription extends Emitter {
  constructor(client, slug) {
    super();
    this.client = client;
    this.slug = slug;
    this.channel = `board:${slug}`;
    this.state = "subscribing";
    this.board = new BoardState(slug);
    this.viewers = null;
    this.error = null;
    this._presence = []; // pending presence() calls: [resolve, reject]
    this._watching = false; // presence() was asked: ask again after each reconnect
  }

  /** Stop watching the board. */
  unsubscribe() {
    this.client.unsubscribe(this.slug);
  }

  /** Who watches the board now (identity → open subscriptions), on every worker; from then
   * on, `presence` events report who joins and leaves (`changed`: identity → new count). */
  presence() {
    if (this.state === "unsubscribed" || this.state === "failed") {
      return Promise.reject(new Error(`${this.channel} is ${this.state}`));
    }
    this._watching = true;
    return new Promise((resolve, reject) => {
      this._presence.push([resolve, reject]);
      if (this.state === "subscribed") this._askPresence();
    });
  }

  _askPresence() {
    this.client._send({ type: "presence", channel: this.channel, id: PRESENCE_ID + this.channel });
  }

  _setState(state, extra = {}) {
    if (this.state === state) return;
    const previous = this.state;
    this.state = state;
    this._emit("state", { state, previous, ...extra });
  }

  /** The connection dropped: the subscription waits to be resumed. */
  _disconnected() {
    if (this.state === "subscribed") this._setState("subscribing");
  }

  /** It has ended (`unsubscribed` or `failed`): pending presence() calls fail. */
  _end(state, error = null) {
    this.error = error;
    for (const [, reject] of this._presence.splice(0)) {
      reject(new Error(error ? `${error.code}: ${error.message}` : `${this.channel} is ${state}`));
    }
    this._setState(state, error ? { error } : {});
  }

  _receive(frame) {
    const board = this.board;
    switch (frame.type) {
      case "subscribed":
        this._setState("subscribed", { frame });
        if (this._watching) this._askPresence();
        break;
      case "snapshot":
        board.load(frame);
        this._emit("snapshot", { board, frame });
        this._emit("change", { board, key: null });
        break;
      case "event": {
        if (board.seq === null || frame.seq <= board.seq) return; // already applied
        if (frame.seq !== board.seq + 1) {
          board.seq = null; // never expected: start over from a snapshot
          this.client._send({ type: "unsubscribe", channel: this.channel });
          this.client._sendSubscribe(this);
          return;
        }
        const key = board.apply(frame);
        this._emit("event", { board, frame, key });
        this._emit("change", { board, key });
        break;
      }
      case "reset":
        board.seq = null; // a snapshot follows
        break;
      case "presence":
        this._presenceFrame(frame);
        break;
      case "error":
        this._error(frame);
        break;
    }
  }

  _presenceFrame(frame) {
    if (frame.viewers) {
      this.viewers = { ...frame.viewers };
      const [resolve] = this._presence.shift() || [];
      if (resolve) resolve({ ...this.viewers });
    } else {
      this.viewers = { ...(this.viewers || {}) };
      for (const [who, count] of Object.entries(frame.changed || {})) {
        if (count > 0) this.viewers[who] = count;
        else delete this.viewers[who];
      }
    }
    this._emit("presence", { viewers: { ...this.viewers }, changed: frame.changed || null });
  }

  _error(frame) {
    if (frame.code === "already_subscribed") return;
    if (frame.id === PRESENCE_ID + this.channel) {
      // A presence() refused (`unavailable`, `not_subscribed`): the subscription goes on.
      const [, reject] = this._presence.shift() || [];
      if (reject) reject(new Error(`${frame.code}: ${frame.message}`));
      this._emit("error", frame);
      return;
    }
    // The subscribe was refused, or (with `channel`) access was lost while live: it ended.
    this.client.subscriptions.delete(this.channel);
    this._emit("error", frame);
    this._end("failed", frame);
  }
}

/**
 * Live boards over one WebSocket. `state`: `connecting`, `live` (the socket is open),
 * `reconnecting`, `failed` (it gave up: `reason` says why), `offline` (closed). Events:
 * `state` ({state, reason?, code?, attempt?}) and `error` (an `error` frame or failure that
 * belongs to no subscription, such as a refused `auth`, or a rejected `getToken`).
 */
export class Switchboard extends Emitter {
  /**
   * @param {object} options
   * @param {string} [options.url] WebSocket URL, or the server's http(s) base URL (default:
   *   this page's host, path /ws; required outside a browser)
   * @param {string} [options.token] API key or viewer token (sent as ?token=)
   * @param {() => Promise<string>} [options.getToken] a fresh token: called before the current
   *   one expires (then sent in an `auth` frame) and after a 4101 close (then reconnects)
   * @param {number} [options.refreshMargin] ms before expiry to refresh (at most half the
   *   time left; default 30000)
   * @param {(status: {state: string, reason?: string, attempt?: number}) => void} [options.onStatus]
   * @param {new (url: string) => WebSocket} [options.WebSocket] the WebSocket class
   *   (default: the runtime's own; in Node 20, pass `ws`'s)
   */
  constructor(options = {}) {
    super();
    this.url = socketUrl(options.url);
    this.WebSocket = options.WebSocket || globalThis.WebSocket;
    if (typeof this.WebSocket !== "function") {
      throw new TypeError(
        "Switchboard: this runtime has no WebSocket; pass one: { WebSocket: (await import('ws')).WebSocket }",
      );
    }
    this.token = options.token || null;
    this.getToken = options.getToken || null;
    this.refreshMargin = options.refreshMargin ?? 30000;
    this.expiresAt = null; // ms since the epoch: when the connection's credential expires
    this._authFails = 0;
    if (options.onStatus) this.on("state", options.onStatus);
    this.pingInterval = options.pingInterval || 15000;
    this.pongTimeout = options.pongTimeout || 10000;
    this.maxBackoff = options.maxBackoff || 10000;
    this.subscriptions = new Map();
    this.attempt = 0;
    this.state = "connecting";
    this.stopped = false;
    this.ws = null;
    this._connect();
  }

  /**
   * Watch a board: returns its `Subscription` (the same one while it lasts, however many
   * times it is asked for). The optional handlers are listeners, kept for pages written
   * before events existed: `onChange(board, key)` runs after the snapshot and after every
   * event (`key`: the widget key an event touched, an array of keys for `widgets.updated`,
   * or null: redraw everything); `onSubscribed(board, frame)` when the server confirms the
   * subscription (after each reconnect too); `onError(frame)` when it refuses it or the
   * board stops being readable.
   */
  subscribe(slug, handlers = {}) {
    const channel = `board:${slug}`;
    let sub = this.subscriptions.get(channel);
    if (!sub) {
      sub = new Subscription(this, slug);
      this.subscriptions.set(channel, sub);
      this._sendSubscribe(sub);
    }
    const { onChange, onSubscribed, onError } = handlers;
    if (onChange) sub.on("change", ({ board, key }) => onChange(board, key));
    if (onSubscribed) {
      sub.on("state", ({ state, frame }) => state === "subscribed" && onSubscribed(sub.board, frame));
    }
    if (onError) sub.on("error", (frame) => onError(frame));
    return sub;
  }

  /** Stop watching a board; its subscription ends as `unsubscribed`. */
  unsubscribe(slug) {
    const channel = `board:${slug}`;
    const sub = this.subscriptions.get(channel);
    if (!sub) return;
    this.subscriptions.delete(channel);
    this._send({ type: "unsubscribe", channel });
    sub._end("unsubscribed");
  }

  /** Close the connection for good; the client's state becomes `offline`, and the promise
   * returned resolves then (once the socket has closed). */
  close() {
    this.stopped = true;
    this._stopTimers();
    clearTimeout(this._refreshTimer);
    clearTimeout(this._reconnectTimer);
    if (this.state === "offline") return Promise.resolve();
    const offline = this.once("state", ({ state }) => state === "offline").then(() => {});
    if (this.ws && this.ws.onclose && this.ws.readyState <= OPEN) this.ws.close(1000);
    else this._closed(this.ws || {}, 1000, "closed");
    return offline;
  }

  _status(state, extra = {}) {
    this.state = state;
    if (state === "failed" || state === "offline") {
      // For good: the subscriptions end too (`failed` says why).
      const error = state === "failed" ? { code: "connection_failed", message: extra.reason } : null;
      const subs = [...this.subscriptions.values()];
      this.subscriptions.clear();
      for (const sub of subs) sub._end(error ? "failed" : "unsubscribed", error);
    }
    this._emit("state", { state, ...extra });
  }

  _connect() {
    if (this.stopped) return;
    const url = this.token ? `${this.url}?token=${encodeURIComponent(this.token)}` : this.url;
    const ws = (this.ws = new this.WebSocket(url));
    ws.onopen = () => {
      this.attempt = 0;
      this._status("live");
      this._authFails = 0;
      this._scheduleRefresh(tokenExpiry(this.token));
      for (const sub of this.subscriptions.values()) this._sendSubscribe(sub);
      this._startPing(ws);
    };
    ws.onmessage = (message) => this._receive(message.data);
    ws.onclose = (closed) => this._closed(ws, closed.code, closed.reason);
    ws.onerror = () => {}; // a `close` follows, and says what happened
  }

  /** `ws` is done: once per socket, whoever noticed first (its close, or the watchdog). */
  _closed(ws, code, reason) {
    // Detach it, so that its late `close` (or a frame still in flight) cannot reconnect
    // a second time, stop the next socket's pinger, or touch the boards' state.
    ws.onopen = ws.onmessage = ws.onclose = null;
    this._stopTimers();
    clearTimeout(this._refreshTimer);
    if (this.stopped) return this._status("offline");
    for (const sub of this.subscriptions.values()) sub._disconnected();
    if (code === 4101 && this.getToken && this.attempt < 3) {
      // The credential expired or was refused: come back with a fresh one, resuming with
      // `since`. Three refusals in a row without getting live again: stop.
      this.attempt += 1;
      this._status("reconnecting", { attempt: this.attempt, code });
      const delay = Math.min(this.maxBackoff, 250 * 2 ** (this.attempt - 1)) * Math.random();
      this.getToken().then(
        (token) => {
          this.token = token;
          this._reconnectTimer = setTimeout(() => this._connect(), delay);
        },
        (error) => {
          this.stopped = true;
          this._emit("error", { code: "get_token_failed", message: String(error) });
          this._status("failed", { reason: `getToken failed: ${error}`, code });
        },
      );
      return;
    }
    if (FATAL.has(code)) {
      this.stopped = true;
      return this._status("failed", { reason: reason || FATAL.get(code), code });
    }
    // 1012 restart, 4008 slow consumer, network loss...: resume with `since`, after a backoff.
    const growing = Math.min(this.maxBackoff, 250 * 2 ** this.attempt);
    const base = SLOW_DOWN.has(code) ? this.maxBackoff : growing;
    const delay = code === 1012 ? Math.random() * 500 : base * (0.5 + Math.random() / 2);
    this.attempt += 1;
    this._status("reconnecting", { attempt: this.attempt, code });
    this._reconnectTimer = setTimeout(() => this._connect(), delay);
  }

  /** Ping on `ws` every `pingInterval`, and give `ws` up as dead once it has been silent
   * (no frame of any kind) for `pingInterval + pongTimeout`: a healthy server is pinged at
   * most `pingInterval` after its last frame and has `pongTimeout` to answer. The watchdog
   * wakes when that much silence would be reached, so the bound is exact, not rounded up
   * to the next ping. Both timers belong to `ws` and end with it. */
  _startPing(ws) {
    this._stopTimers();
    this._lastFrame = Date.now();
    const deadAfter = this.pingInterval + this.pongTimeout;
    this._pinger = setInterval(() => this._send({ type: "ping" }), this.pingInterval);
    const watch = () => {
      const silent = Date.now() - this._lastFrame;
      if (silent < deadAfter) {
        this._watchdog = setTimeout(watch, deadAfter - silent);
        return;
      }
      // Dead. Reconnect now, not when the browser gives up on the closing handshake
      // (which a silent server never answers).
      this._closed(ws, 4000, "no pong");
      ws.close(4000);
    };
    this._watchdog = setTimeout(watch, deadAfter);
  }

  /** Refresh the credential before `expiresAt` (ms), by `refreshMargin` but never more
   * than half the time left, so a short-lived token is not refreshed in a loop. */
  _scheduleRefresh(expiresAt) {
    clearTimeout(this._refreshTimer);
    this.expiresAt = expiresAt;
    if (!this.getToken || expiresAt === null) return;
    const left = expiresAt - Date.now();
    const delay = Math.max(0, left - Math.min(this.refreshMargin, left / 2));
    this._refreshTimer = setTimeout(() => this._refresh(), delay);
  }

  /** Get a fresh token and send it in an `auth` frame on the open socket; the `authed`
   * reply schedules the next refresh. A failure retries shortly, until the old credential
   * expires (then the 4101 close reconnects with a fresh token). */
  _refresh() {
    const ws = this.ws;
    this.getToken().then(
      (token) => {
        this.token = token; // a reconnect uses it too
        if (this.ws !== ws || ws.readyState !== OPEN) return; // onopen schedules
        ws.send(JSON.stringify({ type: "auth", token, id: AUTH_ID }));
      },
      (error) => {
        this._emit("error", { code: "get_token_failed", message: String(error) });
        this._retryRefresh(ws);
      },
    );
  }

  _retryRefresh(ws) {
    if (this.ws !== ws || this.stopped || this.expiresAt === null) return;
    const left = this.expiresAt - Date.now();
    if (left > 250) this._refreshTimer = setTimeout(() => this._refresh(), Math.min(1000, left / 2));
  }

  _stopTimers() {
    clearInterval(this._pinger);
    clearTimeout(this._watchdog);
  }

  _send(frame) {
    if (this.ws && this.ws.readyState === OPEN) this.ws.send(JSON.stringify(frame));
  }

  _sendSubscribe(sub) {
    const frame = { type: "subscribe", channel: sub.channel, id: sub.channel };
    if (sub.board.seq !== null) frame.since = sub.board.seq;
    this._send(frame);
  }

  _receive(data) {
    this._lastFrame = Date.now(); // any frame proves the connection alive
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return this._emit("error", { code: "invalid_json", message: "the server sent a frame that is not JSON" });
    }
    if (frame.id === AUTH_ID) {
      if (frame.type === "authed") {
        this._authFails = 0;
        this._scheduleRefresh(frame.expires_at ? Date.parse(frame.expires_at) : null);
      } else if (frame.type === "error") {
        this._emit("error", frame);
        // Refused: the old credential stays until it expires.
        if (++this._authFails <= 3) this._retryRefresh(this.ws);
      }
      return;
    }
    const id = typeof frame.id === "string" ? frame.id.replace(PRESENCE_ID, "") : frame.id;
    const sub = this.subscriptions.get(frame.channel || id);
    if (sub) sub._receive(frame);
    else if (frame.type === "error") this._emit("error", frame);
  }
}

/** A refused REST request: the server's `{"error": {"code", "message", "details"?}}`, its
 * HTTP `status`, and `retryAfter` (seconds) when it said when to try again. */
export class SwitchboardError extends Error {
  constructor(status, error, retryAfter = null) {
    super(error.message);
    this.name = "SwitchboardError";
    this.status = status;
    this.code = error.code;
    this.details = error.details ?? null;
    this.retryAfter = retryAfter;
  }
}

/** The REST API (`/api/...`) over `fetch`: boards, widgets, points, events, viewer tokens
 * and API keys. Each method resolves with the server's JSON (nothing for a 204), or rejects
 * with a `SwitchboardError`. */
export class SwitchboardRest {
  /**
   * @param {object} options
   * @param {string} [options.baseUrl] e.g. "https://sb.example.com" (default: this page's origin)
   * @param {string} [options.token] API key or viewer token (sent as `Authorization: Bearer`)
   * @param {typeof fetch} [options.fetch] the fetch function (default: the runtime's)
   */
  constructor(options = {}) {
    const page = options.baseUrl ? null : pageOrigin();
    const base = options.baseUrl || (page && `${page.protocol}//${page.host}`);
    if (!base) throw new TypeError("SwitchboardRest: `baseUrl` is required outside a browser");
    this.baseUrl = base.replace(/\/+$/, "");
    this.token = options.token || null;
    this._fetch = options.fetch || globalThis.fetch.bind(globalThis);
  }

  /** One page of the boards the caller may see; follow `next_cursor` until it is null. */
  listBoards({ limit, cursor } = {}) {
    return this.request("GET", "/api/boards", { query: { limit, cursor } });
  }

  /** Every board the caller may see, page after page. */
  async allBoards() {
    const boards = [];
    let cursor;
    do {
      const page = await this.listBoards({ cursor });
      boards.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor);
    return boards;
  }

  createBoard(board, options = {}) {
    return this.request("POST", "/api/boards", { body: board, ...options });
  }

  getBoard(slug) {
    return this.request("GET", boardPath(slug));
  }

  updateBoard(slug, changes, options = {}) {
    return this.request("PATCH", boardPath(slug), { body: changes, ...options });
  }

  deleteBoard(slug, options = {}) {
    return this.request("DELETE", boardPath(slug), options);
  }

  getWidget(slug, key) {
    return this.request("GET", widgetPath(slug, key));
  }

  /** Create (201) or wholly replace (200) a widget. */
  putWidget(slug, key, widget, options = {}) {
    return this.request("PUT", widgetPath(slug, key), { body: widget, ...options });
  }

  /** Change some of a widget's fields (`value`, `title`, `config`). */
  patchWidget(slug, key, changes, options = {}) {
    return this.request("PATCH", widgetPath(slug, key), { body: changes, ...options });
  }

  deleteWidget(slug, key, options = {}) {
    return this.request("DELETE", widgetPath(slug, key), options);
  }

  /** Several widgets in one transaction and one `widgets.updated` event: key → changes
   * (plus an optional `version`, the widget's If-Match). */
  updateWidgets(slug, widgets, options = {}) {
    return this.request("PATCH", `${boardPath(slug)}/widgets`, { body: { widgets }, ...options });
  }

  /** Append points (`{v, t?}`) to a `series` widget. */
  appendPoints(slug, key, points, options = {}) {
    return this.request("POST", `${widgetPath(slug, key)}/points`, { body: { points }, ...options });
  }

  /** Events with seq > `after`, oldest first; follow `next_after` until it is null. */
  events(slug, { after, limit } = {}) {
    return this.request("GET", `${boardPath(slug)}/events`, { query: { after, limit } });
  }

  /** A short-lived viewer token (`read` or `write`), never allowing more than the key. */
  mintToken(request = {}, options = {}) {
    return this.request("POST", "/api/tokens", { body: request, ...options });
  }

  /** A new API key (admin only): its secret, `key`, is in this answer only. */
  createKey(request, options = {}) {
    return this.request("POST", "/api/keys", { body: request, ...options });
  }

  listKeys() {
    return this.request("GET", "/api/keys");
  }

  revokeKey(id, options = {}) {
    return this.request("DELETE", `/api/keys/${encodeURIComponent(id)}`, options);
  }

  /** Any request: `query` (undefined values left out), a JSON `body`, `ifMatch` (a version
   * number) and `idempotencyKey` headers. */
  async request(method, path, { query, body, ifMatch, idempotencyKey } = {}) {
    const headers = { accept: "application/json" };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    if (ifMatch !== undefined) headers["if-match"] = `"${ifMatch}"`;
    if (idempotencyKey !== undefined) headers["idempotency-key"] = idempotencyKey;
    const params = Object.entries(query || {}).filter(([, value]) => value !== undefined && value !== null);
    const search = params.length ? `?${new URLSearchParams(params.map(([k, v]) => [k, String(v)]))}` : "";
    const response = await this._fetch(this.baseUrl + path + search, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (response.ok) return text ? JSON.parse(text) : undefined;
    let error;
    try {
      error = JSON.parse(text).error;
    } catch {
      error = null;
    }
    const retryAfter = Number(response.headers.get("retry-after")) || null;
    throw new SwitchboardError(
      response.status,
      error && error.code ? error : { code: `http_${response.status}`, message: text.slice(0, 200) },
      retryAfter,
    );
  }
}

function boardPath(slug) {
  return `/api/boards/${encodeURIComponent(slug)}`;
}

function widgetPath(slug, key) {
  return `${boardPath(slug)}/widgets/${encodeURIComponent(key)}`;
}
