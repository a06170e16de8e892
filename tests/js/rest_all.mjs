// Every SwitchboardRest method against a real server, in Node 20, from the installed
// package: prints one JSON object of what each answered (tests/js/test_package.py reads it).
import { SwitchboardError, SwitchboardRest } from "switchboard-live-client";

const baseUrl = process.env.SWITCHBOARD_URL;
const admin = new SwitchboardRest({ baseUrl, token: process.env.SWITCHBOARD_TOKEN });
const out = {};

/** The error a call rejects with, as {status, code, details?}. */
async function refused(promise) {
  try {
    await promise;
    return null;
  } catch (error) {
    if (!(error instanceof SwitchboardError)) throw error;
    return { status: error.status, code: error.code, hasDetails: error.details !== null };
  }
}

out.created = (await admin.createBoard({ slug: "rest-a", title: "A", public: true }, { idempotencyKey: "k1" })).slug;
out.replayed = (await admin.createBoard({ slug: "rest-a", title: "A", public: true }, { idempotencyKey: "k1" })).slug;
out.conflict = await refused(admin.createBoard({ slug: "rest-a" }));
await admin.createBoard({ slug: "rest-b" });
out.page = (await admin.listBoards({ limit: 1 })).items.map((b) => b.slug);
out.all = (await admin.allBoards()).map((b) => b.slug);
const board = await admin.getBoard("rest-a");
out.updated = (await admin.updateBoard("rest-a", { title: "A2" }, { ifMatch: board.version })).title;
out.stale = await refused(admin.updateBoard("rest-a", { title: "A3" }, { ifMatch: board.version }));
out.put = (await admin.putWidget("rest-a", "cpu", { kind: "gauge", value: 1, config: { max: 100 } })).version;
out.patched = (await admin.patchWidget("rest-a", "cpu", { value: 2 }, { ifMatch: 1 })).value;
out.widget = (await admin.getWidget("rest-a", "cpu")).value;
await admin.putWidget("rest-a", "up", { kind: "status", value: "ok" });
out.batch = (await admin.updateWidgets("rest-a", { cpu: { value: 3 }, up: { value: "down" } })).widgets.map((w) => w.value);
out.invalid = await refused(admin.updateWidgets("rest-a", { nope: { value: 1 } }));
await admin.putWidget("rest-a", "rps", { kind: "series" });
out.points = (await admin.appendPoints("rest-a", "rps", [{ v: 1 }, { v: 2 }])).value.map((p) => p.v);
await admin.deleteWidget("rest-a", "rps");
out.missingWidget = await refused(admin.getWidget("rest-a", "rps"));
const events = [];
let after = 0;
for (;;) {
  const page = await admin.events("rest-a", { after, limit: 2 });
  events.push(...page.items.map((e) => `${e.seq} ${e.event}`));
  if (page.next_after === null) break;
  after = page.next_after;
}
out.events = events;
const token = await admin.mintToken({ role: "read", boards: ["rest-a"], ttl: 60 });
out.token = { role: token.role, boards: token.boards };
const viewer = new SwitchboardRest({ baseUrl, token: token.token });
out.viewerReads = (await viewer.getBoard("rest-a")).title;
out.viewerWrites = await refused(viewer.patchWidget("rest-a", "cpu", { value: 9 }));
const key = await admin.createKey({ role: "write", boards: ["rest-b"], name: "node" });
out.key = { role: key.role, boards: key.boards, name: key.name, secret: key.key.startsWith(key.prefix) };
const writer = new SwitchboardRest({ baseUrl, token: key.key });
out.writerWrites = (await writer.putWidget("rest-b", "n", { kind: "number", value: 5 })).value;
out.writerElsewhere = await refused(writer.putWidget("rest-a", "n", { kind: "number", value: 5 }));
out.keys = (await admin.listKeys()).items.filter((k) => k.id === key.id).length;
await admin.revokeKey(key.id);
out.revoked = (await admin.listKeys()).items.find((k) => k.id === key.id).revoked_at !== null;
out.revokedWrites = await refused(writer.putWidget("rest-b", "n", { kind: "number", value: 6 }));
await admin.deleteBoard("rest-b");
out.deleted = await refused(admin.getBoard("rest-b"));
out.health = (await admin.request("GET", "/healthz")).status;
console.log(JSON.stringify(out));
