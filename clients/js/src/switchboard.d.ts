// Types of switchboard.js: the live client (`Switchboard`), its subscriptions, and the REST
// client (`SwitchboardRest`). Self-contained: no DOM or Node types are needed.

// --- Resources, exactly as the REST API and the WebSocket frames carry them -------------

export type WidgetKind = "number" | "gauge" | "status" | "text" | "series";

export interface Point {
  t: string;
  v: number;
}

export interface Widget {
  key: string;
  kind: WidgetKind;
  title: string;
  config: Record<string, unknown>;
  /** A number, a string, null, or a series' points, depending on `kind`. */
  value: unknown;
  version: number;
  created_at: string;
  updated_at: string;
}

export interface BoardSummary {
  slug: string;
  title: string;
  description: string;
  public: boolean;
  /** The last event applied to the board. */
  seq: number;
  version: number;
  created_at: string;
  updated_at: string;
}

export interface Board extends BoardSummary {
  widgets: Widget[];
}

export interface BoardPage {
  items: BoardSummary[];
  next_cursor: string | null;
}

export type EventName =
  | "widget.created"
  | "widget.updated"
  | "widgets.updated"
  | "widget.points"
  | "widget.deleted"
  | "board.created"
  | "board.updated"
  | "board.deleted";

export interface StoredEvent {
  channel: string;
  seq: number;
  event: EventName;
  data: Record<string, unknown>;
  at: string;
}

export interface EventPage {
  items: StoredEvent[];
  /** The board's current seq: the history is complete when the last item has it. */
  seq: number;
  next_after: number | null;
}

export type Role = "read" | "write" | "admin";

export interface TokenRequest {
  role?: "read" | "write";
  boards?: string[] | null;
  /** Seconds (default 900, capped by SWITCHBOARD_TOKEN_TTL_MAX). */
  ttl?: number | null;
}

export interface Token {
  token: string;
  role: "read" | "write";
  boards: string[] | null;
  expires_at: string;
}

export interface KeyRequest {
  role: Role;
  boards?: string[] | null;
  name?: string;
}

export interface Key {
  id: string;
  prefix: string;
  role: Role;
  boards: string[] | null;
  name: string;
  created_at: string;
  revoked_at: string | null;
}

export interface CreatedKey extends Key {
  /** The whole key: shown in this answer only. */
  key: string;
}

export interface KeyList {
  items: Key[];
}

export interface BoardCreate {
  slug: string;
  title?: string;
  description?: string;
  public?: boolean;
}

export interface BoardPatch {
  title?: string;
  description?: string;
  public?: boolean;
}

export interface WidgetPut {
  kind: WidgetKind;
  title?: string;
  config?: Record<string, unknown>;
  value?: unknown;
}

export interface WidgetPatch {
  title?: string;
  config?: Record<string, unknown>;
  value?: unknown;
}

export interface WidgetBatchEntry extends WidgetPatch {
  /** The version last seen (this widget's If-Match). */
  version?: number;
}

export interface PointIn {
  t?: string;
  v: number;
}

// --- WebSocket frames -------------------------------------------------------------------

export interface SubscribedFrame {
  type: "subscribed";
  channel: string;
  seq: number;
  id?: string | number;
}

export interface SnapshotFrame {
  type: "snapshot";
  channel: string;
  seq: number;
  data: Board;
}

export interface EventFrame extends StoredEvent {
  type: "event";
}

export interface ErrorFrame {
  type?: "error";
  code: string;
  message: string;
  id?: string | number;
  channel?: string;
}

/** Identity (`key:<id>`, `token:<id>`, `bootstrap`, `anonymous`; or, seen anonymously,
 * `anonymous` and `authenticated`) → its open subscriptions to the board. */
export type Viewers = Record<string, number>;

// --- The live client --------------------------------------------------------------------

/** What a WebSocket implementation must offer (the browser's, `ws`'s). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketClass = new (url: string) => WebSocketLike;

export type ClientState = "connecting" | "live" | "reconnecting" | "failed" | "offline";

export interface ClientStatus {
  state: ClientState;
  /** Why it failed. */
  reason?: string;
  /** The close code that caused this state. */
  code?: number;
  attempt?: number;
}

export interface SwitchboardOptions {
  /** ws(s)://host/ws, or the server's http(s)://host (default: this page's host; required
   * outside a browser). */
  url?: string;
  /** An API key or a viewer token. */
  token?: string | null;
  /** A fresh token: before the current one expires, and after a 4101 close. */
  getToken?: (() => Promise<string>) | null;
  /** ms before expiry to refresh (default 30000, at most half the time left). */
  refreshMargin?: number;
  /** The same as `on("state", …)`. */
  onStatus?: (status: ClientStatus) => void;
  /** ms between pings (default 15000). */
  pingInterval?: number;
  /** ms a ping may go unanswered (default 10000). */
  pongTimeout?: number;
  /** ms, the longest wait between reconnects (default 10000). */
  maxBackoff?: number;
  /** The WebSocket class (default: the runtime's; in Node 20: `ws`'s `WebSocket`). */
  WebSocket?: WebSocketClass;
}

/** A widget key an event touched, the keys of a batch, or null (redraw everything). */
export type ChangedKey = string | string[] | null;

/** One board's live state. */
export declare class BoardState {
  constructor(slug: string);
  readonly slug: string;
  /** The board's fields (null before the snapshot); `deleted: true` once deleted. */
  board: (BoardSummary & { deleted?: true }) | null;
  widgets: Map<string, Widget>;
  /** The last seq applied (null before the snapshot). */
  seq: number | null;
  updatedAt: Date | null;
  load(snapshot: SnapshotFrame): void;
  apply(event: EventFrame): ChangedKey;
}

export type SubscriptionState = "subscribing" | "subscribed" | "unsubscribed" | "failed";

export interface SubscriptionEvents {
  snapshot: { board: BoardState; frame: SnapshotFrame };
  event: { board: BoardState; frame: EventFrame; key: ChangedKey };
  /** After the snapshot (key null) and after every event. */
  change: { board: BoardState; key: ChangedKey };
  /** `changed` is null for the answer to `presence()`, who joined or left otherwise. */
  presence: { viewers: Viewers; changed: Viewers | null };
  state: {
    state: SubscriptionState;
    previous: SubscriptionState;
    /** With `subscribed`: the server's frame. */
    frame?: SubscribedFrame;
    /** With `failed`: why. */
    error?: ErrorFrame;
  };
  error: ErrorFrame;
}

export interface ClientEvents {
  state: ClientStatus;
  error: ErrorFrame;
}

/** Named events, each with any number of listeners. */
export declare class Emitter<Events> {
  /** Add a listener; returns a function that removes it. */
  on<E extends keyof Events>(name: E, listener: (payload: Events[E]) => void): () => void;
  off<E extends keyof Events>(name: E, listener: (payload: Events[E]) => void): void;
  /** The next payload of `name` (the next that passes `test`, if given). */
  once<E extends keyof Events>(name: E, test?: (payload: Events[E]) => boolean): Promise<Events[E]>;
}

export declare class Subscription extends Emitter<SubscriptionEvents> {
  readonly client: Switchboard;
  readonly slug: string;
  readonly channel: string;
  readonly state: SubscriptionState;
  readonly board: BoardState;
  /** Who watches the board, once `presence()` was asked (null before). */
  readonly viewers: Viewers | null;
  /** Why it failed. */
  readonly error: ErrorFrame | null;
  unsubscribe(): void;
  /** Who watches the board now; from then on, `presence` events say who joins and leaves. */
  presence(): Promise<Viewers>;
}

/** The handlers of pages written before events existed. */
export interface SubscribeHandlers {
  onChange?: (board: BoardState, key: ChangedKey) => void;
  onSubscribed?: (board: BoardState, frame: SubscribedFrame) => void;
  onError?: (error: ErrorFrame) => void;
}

export declare class Switchboard extends Emitter<ClientEvents> {
  constructor(options?: SwitchboardOptions);
  readonly url: string;
  readonly state: ClientState;
  token: string | null;
  /** When the connection's credential expires (ms since the epoch), null for a key. */
  readonly expiresAt: number | null;
  readonly subscriptions: Map<string, Subscription>;
  subscribe(slug: string, handlers?: SubscribeHandlers): Subscription;
  unsubscribe(slug: string): void;
  /** Close for good; resolves once the socket has closed (`state` is then `offline`). */
  close(): Promise<void>;
}

// --- REST -------------------------------------------------------------------------------

/** The fetch response parts the REST client reads. */
export interface FetchResponseLike {
  readonly ok: boolean;
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  text(): Promise<string>;
}

export type FetchLike = (
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string },
) => Promise<FetchResponseLike>;

export interface RestOptions {
  /** e.g. "https://sb.example.com" (default: this page's origin; required outside a browser). */
  baseUrl?: string;
  token?: string | null;
  fetch?: FetchLike;
}

export interface WriteOptions {
  /** Only at this version (`If-Match`); 412 otherwise. */
  ifMatch?: number;
  /** A retry with the same key gets the first answer (`Idempotency-Key`). */
  idempotencyKey?: string;
}

export interface RequestOptions extends WriteOptions {
  query?: Record<string, string | number | boolean | null | undefined>;
  body?: unknown;
}

/** A refused request: the server's `{"error": {"code", "message", "details"?}}`. */
export declare class SwitchboardError extends Error {
  readonly status: number;
  /** e.g. `not_found`, `validation_error`, `precondition_failed`; `http_<status>` when the
   * answer was not the server's JSON (a proxy's). */
  readonly code: string;
  readonly details: unknown;
  /** Seconds, from `Retry-After` (429, 503). */
  readonly retryAfter: number | null;
}

export declare class SwitchboardRest {
  constructor(options?: RestOptions);
  readonly baseUrl: string;
  token: string | null;
  listBoards(page?: { limit?: number; cursor?: string | null }): Promise<BoardPage>;
  allBoards(): Promise<BoardSummary[]>;
  createBoard(board: BoardCreate, options?: WriteOptions): Promise<Board>;
  getBoard(slug: string): Promise<Board>;
  updateBoard(slug: string, changes: BoardPatch, options?: WriteOptions): Promise<BoardSummary>;
  deleteBoard(slug: string, options?: WriteOptions): Promise<void>;
  getWidget(slug: string, key: string): Promise<Widget>;
  putWidget(slug: string, key: string, widget: WidgetPut, options?: WriteOptions): Promise<Widget>;
  patchWidget(slug: string, key: string, changes: WidgetPatch, options?: WriteOptions): Promise<Widget>;
  deleteWidget(slug: string, key: string, options?: WriteOptions): Promise<void>;
  updateWidgets(
    slug: string,
    widgets: Record<string, WidgetBatchEntry>,
    options?: WriteOptions,
  ): Promise<{ widgets: Widget[] }>;
  appendPoints(slug: string, key: string, points: PointIn[], options?: WriteOptions): Promise<Widget>;
  events(slug: string, page?: { after?: number; limit?: number }): Promise<EventPage>;
  mintToken(request?: TokenRequest, options?: WriteOptions): Promise<Token>;
  createKey(request: KeyRequest, options?: WriteOptions): Promise<CreatedKey>;
  listKeys(): Promise<KeyList>;
  revokeKey(id: string, options?: WriteOptions): Promise<void>;
  request<T = unknown>(method: string, path: string, options?: RequestOptions): Promise<T>;
}
