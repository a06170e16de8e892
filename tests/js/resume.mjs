// Node 20: watch board `resume` and print, one JSON line each, the client's and the
// subscription's states and every change (value, seq, and whether a snapshot brought it),
// until stdin closes. tests/js/test_package.py restarts the server under it.
import { WebSocket } from "ws";
import { Switchboard } from "switchboard-live-client";

const say = (line) => console.log(JSON.stringify(line));
const client = new Switchboard({ url: process.env.SWITCHBOARD_URL, token: process.env.SWITCHBOARD_TOKEN, WebSocket });
client.on("state", ({ state, code }) => say({ client: state, code: code ?? null }));
const sub = client.subscribe("resume");
sub.on("state", ({ state }) => say({ sub: state }));
let snapshot = false;
sub.on("snapshot", () => (snapshot = true));
sub.on("change", ({ board }) => {
  say({ value: board.widgets.get("n").value, seq: board.seq, snapshot });
  snapshot = false;
});
process.stdin.resume();
process.stdin.on("end", async () => {
  await client.close();
  say({ closed: client.state });
});
