// Every part of the API, as TypeScript sees it: `npm run typecheck` compiles this file
// against src/switchboard.d.ts through the package's own name (its "exports"). It is
// type-checked, not run (examples/node.mjs is the one that runs).
import { WebSocket } from "ws";
import {
  BoardState,
  Switchboard,
  SwitchboardError,
  SwitchboardRest,
  type Board,
  type ChangedKey,
  type ClientStatus,
  type Subscription,
  type SubscriptionState,
  type Viewers,
  type Widget,
} from "switchboard-live-client";

const baseUrl = "http://127.0.0.1:8000";

async function rest(): Promise<string> {
  const api = new SwitchboardRest({ baseUrl, token: "sk_admin" });
  const board: Board = await api.createBoard(
    { slug: "ops", title: "Operations", public: true },
    { idempotencyKey: "create-ops-1" },
  );
  const page = await api.listBoards({ limit: 10 });
  const more: string | null = page.next_cursor;
  const all = await api.allBoards();
  const summary = await api.updateBoard("ops", { title: "Ops" }, { ifMatch: board.version });
  const cpu: Widget = await api.putWidget("ops", "cpu", { kind: "gauge", value: 12, config: { max: 100 } });
  await api.patchWidget("ops", "cpu", { value: 87 }, { ifMatch: cpu.version });
  const again = await api.getWidget("ops", "cpu");
  const batch = await api.updateWidgets("ops", { cpu: { value: 50, version: again.version } });
  await api.putWidget("ops", "rps", { kind: "series" });
  const series = await api.appendPoints("ops", "rps", [{ v: 120 }, { t: "2026-11-25T10:00:00Z", v: 131 }]);
  let after = 0;
  for (;;) {
    const events = await api.events("ops", { after, limit: 100 });
    for (const event of events.items) console.log(event.seq, event.event, event.data);
    if (events.next_after === null) break;
    after = events.next_after;
  }
  const token = await api.mintToken({ role: "read", boards: ["ops"], ttl: 600 });
  const key = await api.createKey({ role: "write", boards: ["ops"], name: "ci" });
  const keys = await api.listKeys();
  await api.revokeKey(key.id);
  await api.deleteWidget("ops", "rps");
  const fresh: Board = await api.getBoard("ops");
  await api.deleteBoard("ops", { ifMatch: fresh.version });
  const raw = await api.request<{ status: string }>("GET", "/healthz");
  try {
    await api.getBoard("nope");
  } catch (error) {
    if (error instanceof SwitchboardError) {
      const code: string = error.code;
      const status: number = error.status;
      console.log(code, status, error.message, error.details, error.retryAfter);
    }
  }
  console.log(more, all.length, summary.title, batch.widgets.length, series.value, keys.items, raw.status);
  return token.token;
}

function live(token: string): Switchboard {
  const client = new Switchboard({
    url: baseUrl, // or "ws://127.0.0.1:8000/ws"; a page may leave it out
    token,
    getToken: async () => (await new SwitchboardRest({ baseUrl, token: "sk_admin" }).mintToken()).token,
    refreshMargin: 30_000,
    pingInterval: 15_000,
    pongTimeout: 10_000,
    maxBackoff: 10_000,
    WebSocket, // Node 20: ws's; a browser's own is used when left out
    onStatus: (status: ClientStatus) => console.log(status.state, status.reason ?? ""),
  });
  const stop = client.on("state", ({ state, code, attempt }) => console.log(state, code, attempt));
  client.on("error", (error) => console.warn(error.code, error.message));

  const ops: Subscription = client.subscribe("ops");
  ops.on("snapshot", ({ board, frame }) => console.log(frame.seq, board.widgets.size));
  ops.on("event", ({ frame, key }) => console.log(frame.event, frame.seq, key));
  const draw = ({ board, key }: { board: BoardState; key: ChangedKey }) => {
    const keys = key === null ? [...board.widgets.keys()] : Array.isArray(key) ? key : [key];
    for (const k of keys) console.log(k, board.widgets.get(k)?.value);
  };
  ops.on("change", draw);
  ops.off("change", draw);
  ops.on("state", ({ state, previous, frame, error }) => {
    const now: SubscriptionState = state;
    console.log(previous, "→", now, frame?.seq, error?.code);
  });
  ops.on("presence", ({ viewers, changed }) => console.log(viewers, changed));
  ops.on("error", (error) => console.warn(error.code, error.channel));
  ops.presence().then((viewers: Viewers) => console.log(Object.keys(viewers)));
  ops.once("snapshot").then(({ board }) => console.log(board.board?.title, board.seq, ops.state));
  ops.once("presence", ({ viewers }) => "anonymous" in viewers).then(({ changed }) => console.log(changed));
  console.log(ops.viewers, ops.error, ops.board.updatedAt, ops.channel, ops.slug);

  // The handlers of earlier pages (the dashboard's).
  const same = client.subscribe("ops", {
    onChange: (board, key) => console.log(board.seq, key),
    onSubscribed: (board, frame) => console.log(board.slug, frame.seq),
    onError: (error) => console.warn(error.message),
  });
  console.log(same === ops, client.state, client.expiresAt, client.subscriptions.size);
  stop();
  ops.unsubscribe();
  client.unsubscribe("ops");
  return client;
}

rest()
  .then(live)
  .then((client) => client.close())
  .then(() => console.log("closed"));
