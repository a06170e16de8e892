// Node 20, a private board watched with 3-second viewer tokens for ~8 s: each token is
// refreshed in band (`auth` frames) on one socket, and every value arrives once, in order.
// Prints {sockets, tokens, values, states} (tests/js/test_package.py reads it).
import { WebSocket } from "ws";
import { Switchboard, SwitchboardRest } from "switchboard-live-client";

const url = process.env.SWITCHBOARD_URL;
const api = new SwitchboardRest({ baseUrl: url, token: process.env.SWITCHBOARD_TOKEN });
await api.createBoard({ slug: "refresh" });
await api.putWidget("refresh", "n", { kind: "number", value: 0 });

let sockets = 0;
class Counted extends WebSocket {
  constructor(...args) {
    super(...args);
    sockets += 1;
  }
}
let tokens = 0;
const getToken = async () => {
  tokens += 1;
  return (await api.mintToken({ boards: ["refresh"], ttl: 3 })).token;
};
const states = [];
const values = [];
const client = new Switchboard({ url, token: await getToken(), getToken, refreshMargin: 1500, WebSocket: Counted });
client.on("state", ({ state }) => states.push(state));
const board = client.subscribe("refresh");
board.on("change", ({ board }) => values.push(board.widgets.get("n").value));
await board.once("snapshot");
for (let value = 1; value <= 8; value += 1) {
  await new Promise((resolve) => setTimeout(resolve, 1000));
  await api.patchWidget("refresh", "n", { value });
}
await new Promise((resolve) => setTimeout(resolve, 500));
await client.close();
console.log(JSON.stringify({ sockets, tokens, values, states }));
