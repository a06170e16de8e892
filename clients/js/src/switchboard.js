// Switchboard client: live boards over one WebSocket, for any page or SPA (no framework).
//
//   import { Switchboard } from "/static/switchboard.js";
//   const sb = new Switchboard({ token, onStatus: (s) => console.log(s.state) });
//   sb.subscribe("ops", { onChange: (board) => render(board) });
//
// It keeps each board's state from `snapshot` + `event` frames, resumes with `since` after
// any disconnect (jittered exponential backoff), takes a fresh snapshot on `reset`, pings
// to detect a dead connection, and stops (reporting why) when the credential is refused.
// With `getToken`, it refreshes a short-lived token in band (an `auth` frame) before it
// expires, and reconnects with a fresh one after a 4101 instead of stopping.

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

export class Switchboard {
  /**
   * @param {object} options
   * @param {string} [options.url] WebSocket URL (default: this page's host, path /ws)
   * @param {string} [options.token] API key or viewer token (sent as ?token=)
   * @param {() => Promise<string>} [options.getToken] a fresh token: called before the current
   *   one expires (then sent in an `auth` frame) and after a 4101 close (then reconnects)
   * @param {number} [options.refreshMargin] ms before expiry to refresh (at most half the
   *   time left; default 30000)
   * @param {(status: {state: string, reason?: string, attempt?: number}) => void} [options.onStatus]
   */
  constructor(options = {}) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.url = options.url || `${scheme}://${location.host}/ws`;
    this.token = options.token || null;
    this.getToken = options.getToken || null;
    this.refreshMargin = options.refreshMargin ?? 30000;
    this.expiresAt = null; // ms since the epoch: when the connection's credential expires
    this._authFails = 0;
    this.onStatus = options.onStatus || (() => {});
    this.pingInterval = options.pingInterval || 15000;
    this.pongTimeout = options.pongTimeout || 10000;
    this.maxBackoff = options.maxBackoff || 10000;
    this.subscriptions = new Map();
    this.attempt = 0;
    this.stopped = false;
    this.ws = null;
    this._connect();
  }

  /**
   * Watch a board; `onChange(state, key)` runs after the snapshot and after every event:
   * `key` is the widget key an event touched, an array of keys for `widgets.updated`, or
   * null (snapshot, board events: redraw everything). `onSubscribed(state, frame)` runs
   * when the server confirms the subscription (after each reconnect too); `onError(frame)`
   * when it refuses it or the board stops being readable.
   */
  subscribe(slug, handlers = {}) {
    const sub = { state: new BoardState(slug), handlers };
    this.subscriptions.set(`board:${slug}`, sub);
    this._sendSubscribe(`board:${slug}`, sub);
    return sub.state;
  }

  unsubscribe(slug) {
    const channel = `board:${slug}`;
    if (this.subscriptions.delete(channel)) this._send({ type: "unsubscribe", channel });
  }

  close() {
    this.stopped = true;
    this._stopTimers();
    clearTimeout(this._refreshTimer);
    if (this.ws) this.ws.close(1000);
  }

  _status(state, extra = {}) {
    this.state = state;
    this.onStatus({ state, ...extra });
  }

  _connect() {
    if (this.stopped) return;
    const url = this.token ? `${this.url}?token=${encodeURIComponent(this.token)}` : this.url;
    const ws = (this.ws = new WebSocket(url));
    ws.onopen = () => {
      this.attempt = 0;
      this._status("live");
      this._authFails = 0;
      this._scheduleRefresh(tokenExpiry(this.token));
      for (const [channel, sub] of this.subscriptions) this._sendSubscribe(channel, sub);
      this._startPing(ws);
    };
    ws.onmessage = (message) => this._receive(JSON.parse(message.data));
    ws.onclose = (closed) => this._closed(ws, closed.code, closed.reason);
  }

  /** `ws` is done: once per socket, whoever noticed first (its close, or the watchdog). */
  _closed(ws, code, reason) {
    // Detach it, so that its late `close` (or a frame still in flight) cannot reconnect
    // a second time, stop the next socket's pinger, or touch the boards' state.
    ws.onopen = ws.onmessage = ws.onclose = null;
    this._stopTimers();
    clearTimeout(this._refreshTimer);
    if (this.stopped) return this._status("offline");
    if (code === 4101 && this.getToken && this.attempt < 3) {
      // The credential expired or was refused: come back with a fresh one, resuming with
      // `since`. Three refusals in a row without getting live again: stop.
      this.attempt += 1;
      this._status("reconnecting", { attempt: this.attempt, code });
      const delay = Math.min(this.maxBackoff, 250 * 2 ** (this.attempt - 1)) * Math.random();
      this.getToken().then(
        (token) => {
          this.token = token;
          setTimeout(() => this._connect(), delay);
        },
        (error) => {
          this.stopped = true;
          this._status("failed", { reason: `getToken failed: ${error}`, code });
        },
      );
      return;
    }    if (FATAL.has(code)) {
      this.stopped = true;
      return this._status("failed", { reason: reason || FATAL.get(code), code });
    }
    // 1012 restart, 4008 slow consumer, network loss...: resume with `since`, after a backoff.
    const growing = Math.min(this.maxBackoff, 250 * 2 ** this.attempt);
    const base = SLOW_DOWN.has(code) ? this.maxBackoff : growing;
    const delay = code === 1012 ? Math.random() * 500 : base * (0.5 + Math.random() / 2);
    this.attempt += 1;
    this._status("reconnecting", { attempt: this.attempt, code });
    setTimeout(() => this._connect(), delay);
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
        if (this.ws !== ws || ws.readyState !== WebSocket.OPEN) return; // onopen schedules
        ws.send(JSON.stringify({ type: "auth", token, id: AUTH_ID }));
      },
      () => this._retryRefresh(ws),
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
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  _sendSubscribe(channel, sub) {
    const frame = { type: "subscribe", channel, id: channel };
    if (sub.state.seq !== null) frame.since = sub.state.seq;
    this._send(frame);
  }

  _receive(frame) {
    this._lastFrame = Date.now(); // any frame proves the connection alive
    if (frame.id === AUTH_ID) {
      if (frame.type === "authed") {
        this._authFails = 0;
        this._scheduleRefresh(frame.expires_at ? Date.parse(frame.expires_at) : null);
      } else if (frame.type === "error" && ++this._authFails <= 3) {
        this._retryRefresh(this.ws); // refused: the old credential stays until it expires
      }
      return;
    }
    const sub = this.subscriptions.get(frame.channel || frame.id);
    if (!sub) return;
    const { state, handlers } = sub;
    switch (frame.type) {
      case "subscribed":
        handlers.onSubscribed && handlers.onSubscribed(state, frame);
        break;
      case "snapshot":
        state.load(frame);
        handlers.onChange && handlers.onChange(state, null);
        break;
      case "event":
        if (state.seq === null || frame.seq <= state.seq) return; // already applied
        if (frame.seq !== state.seq + 1) {
          state.seq = null; // never expected: start over from a snapshot
          this._send({ type: "unsubscribe", channel: frame.channel });
          this._sendSubscribe(frame.channel, sub);
          return;
        }
        handlers.onChange && handlers.onChange(state, state.apply(frame));
        break;
      case "reset":
        state.seq = null; // a snapshot follows
        break;
      case "error":
        if (frame.code === "already_subscribed") return;
        this.subscriptions.delete(frame.channel || frame.id); // `channel`: access lost while live
        handlers.onError && handlers.onError(frame);
        break;
    }
  }
}
