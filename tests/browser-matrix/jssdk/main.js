// SPDX-License-Identifier: MIT
// matrix-js-sdk (npm) in a page of its own origin, pointed at qund by the query string:
// ?hs=<qund url>&token=&user=&device=.  It starts the client as Element does (lazy-loaded
// members, an inline filter for the first sync, push rules, capabilities, a stored filter
// id that a second start verifies with GET /filter), shows the visible rooms and the
// current room's timeline, and exposes a few calls on window.qun for
// tests/browser-matrix/matrix.test.mjs.
import * as sdk from "matrix-js-sdk";

const q = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const state = (window.qun = { status: "starting", error: null, current: q.get("room") || null });

// MemoryStore keeps filter ids in localStorage: a reload finds the id and verifies it.
const client = sdk.createClient({
  baseUrl: q.get("hs"), accessToken: q.get("token"), userId: q.get("user"), deviceId: q.get("device"),
  store: new sdk.MemoryStore({ localStorage: window.localStorage }), timelineSupport: true,
});

function roomLabel(room) {
  return room.name || room.roomId;
}

function describe(ev) {
  const c = ev.getContent();
  switch (ev.getType()) {
    case "m.room.message": return { text: c.body, state: false };
    case "m.room.member": return { text: `${c.displayname || ev.getStateKey()} ${c.membership === "join" ? "joined" : "is " + c.membership}${c.reason ? " — " + c.reason : ""}`, state: true };
    case "m.room.name": return { text: `the room is now called "${c.name}"`, state: true };
    case "m.room.create": return { text: c.predecessor ? "continues an earlier room" : "room created", state: true };
    case "m.room.tombstone": return { text: "this room was replaced by a successor", state: true };
    default: return null;
  }
}

function render() {
  const rooms = client.getVisibleRooms().sort((a, b) => roomLabel(a).localeCompare(roomLabel(b)));
  if (!rooms.some((r) => r.roomId === state.current)) state.current = rooms[0]?.roomId || null;
  $("roomlist").replaceChildren(...rooms.map((r) => {
    const li = document.createElement("li");
    li.textContent = roomLabel(r);
    li.className = r.roomId === state.current ? "current" : "";
    li.dataset.room = r.roomId;
    const small = document.createElement("small");
    small.textContent = `${r.getJoinedMemberCount()} members · ${r.getMyMembership()}`;
    li.append(small);
    li.onclick = () => { state.current = r.roomId; render(); };
    return li;
  }));
  const room = state.current && client.getRoom(state.current);
  $("roomname").textContent = room ? roomLabel(room) : "no room";
  $("timeline").replaceChildren(...(room ? room.getLiveTimeline().getEvents() : []).flatMap((ev) => {
    const d = describe(ev);
    if (!d) return [];
    const div = document.createElement("div");
    div.className = d.state ? "ev state" : "ev";
    if (!d.state) {
      const who = document.createElement("b");
      who.textContent = room.getMember(ev.getSender())?.name || ev.getSender();
      div.append(who);
    }
    div.append(d.text);
    return [div];
  }));
  $("status").textContent = `${client.getUserId()} · sync ${state.status}`;
}

// The calls the test makes.
state.visibleRooms = () => client.getVisibleRooms().map((r) => r.roomId);
state.allRooms = () => client.getRooms().map((r) => ({ id: r.roomId, membership: r.getMyMembership() }));
state.timeline = (roomId) => (client.getRoom(roomId)?.getLiveTimeline().getEvents() || [])
  .map((ev) => ({ type: ev.getType(), body: ev.getContent().body || null, sender: ev.getSender() }));
state.send = async (roomId, text) => (await client.sendTextMessage(roomId, text)).event_id;
state.select = (roomId) => { state.current = roomId; render(); };

client.on(sdk.ClientEvent.Sync, (s, prev, data) => {
  state.status = s;
  if (s === "ERROR") state.error = String(data?.error?.message || data?.error || "sync error");
  render();
});
client.on(sdk.RoomEvent.Timeline, () => render());
client.on(sdk.ClientEvent.Room, () => render());
client.on(sdk.RoomEvent.MyMembership, () => render());

client.startClient({ lazyLoadMembers: true, initialSyncLimit: 20, pendingEventOrdering: "detached" }).catch((e) => {
  state.status = "error";
  state.error = String(e && e.stack || e);
});
