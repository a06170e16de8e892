// Node 20: create a board over REST, watch it live over a WebSocket, see who watches it.
//   npm install switchboard-live-client ws
//   SWITCHBOARD_URL=http://127.0.0.1:8000 SWITCHBOARD_TOKEN=<an admin key> node node.mjs
import { WebSocket } from "ws";
import { Switchboard, SwitchboardRest } from "switchboard-live-client";

const url = process.env.SWITCHBOARD_URL ?? "http://127.0.0.1:8000";
const key = process.env.SWITCHBOARD_TOKEN;
const slug = process.argv[2] ?? "node-demo";

// REST: a private board with one widget, and a viewer token that may read it.
const api = new SwitchboardRest({ baseUrl: url, token: key });
await api.createBoard({ slug, title: "From Node" });
await api.putWidget(slug, "jobs", { kind: "number", title: "Jobs", value: 1 });
const viewerToken = await api.mintToken({ role: "read", boards: [slug], ttl: 60 });
console.log(`token for ${viewerToken.boards}, expires ${viewerToken.expires_at}`);

// Live: the snapshot, then every change.
const live = new Switchboard({ url, token: key, WebSocket });
live.on("state", ({ state }) => console.log(`client: ${state}`));
const board = live.subscribe(slug);
board.on("state", ({ state }) => console.log(`${slug}: ${state}`));
const snapshot = await board.once("snapshot");
console.log(`snapshot at seq ${snapshot.frame.seq}: jobs=${board.board.widgets.get("jobs").value}`);

const next = board.once("event");
await api.patchWidget(slug, "jobs", { value: 2 });
const { frame } = await next;
console.log(`event ${frame.event} at seq ${frame.seq}: jobs=${board.board.widgets.get("jobs").value}`);

// Presence: who watches now, then who joins and leaves (a viewer with the token).
console.log(`viewers: ${JSON.stringify(await board.presence())}`);
const withToken = ({ viewers }) => Object.keys(viewers).some((who) => who.startsWith("token:"));
const joined = board.once("presence", withToken);
const viewer = new Switchboard({ url, token: viewerToken.token, WebSocket });
viewer.subscribe(slug);
console.log(`joined: ${JSON.stringify((await joined).viewers)}`);
const left = board.once("presence", (presence) => !withToken(presence));
viewer.close();
console.log(`left: ${JSON.stringify((await left).viewers)}`);

live.close();
