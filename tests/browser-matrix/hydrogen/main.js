// SPDX-License-Identifier: MIT
// hydrogen (npm hydrogen-view-sdk) in a page of its own origin, pointed at qund by the query
// string: ?hs=<qund url>&token=&user=&device=&room=.  It starts a session from the access
// token (no login UI), or with &username=&password= through hydrogen's own login
// (queryLogin, then startWithLogin), mounts hydrogen's own RoomView (its TimelineView and composer) for
// the room, and reports its progress on window.qun for tests/browser-matrix/matrix.test.mjs.
// When the room leaves the joined set (qun dissolved the group), the page mounts the
// archived room, as hydrogen's app does, so its "You were kicked…" text shows.
import {
  Platform, Client, LoadStatus, createNavigation, createRouter,
  RoomViewModel, RoomView, viewClassForTile, FeatureSet,
} from "hydrogen-view-sdk";

const q = new URLSearchParams(location.search);
const app = document.querySelector("#app");
const state = (window.qun = { status: "starting", error: null, archived: false });

// No olm: the page never enables end-to-end encryption.  The service worker is required:
// without it platform.updateService is null and the session start throws; it also adds
// the access token to authenticated media requests.
const assetPaths = { downloadSandbox: "download-sandbox.html", serviceWorker: "sw.js" };

async function mountRoom(session, platform, navigation, urlRouter, features, room) {
  const vm = new RoomViewModel({
    room, ownUserId: session.userId, platform, urlRouter, navigation, features, session,
  });
  await vm.load();
  app.replaceChildren(new RoomView(vm, viewClassForTile).mount());
  return vm;
}

async function main() {
  const platform = new Platform({ container: app, assetPaths, config: {}, options: { development: false } });
  const navigation = createNavigation();
  platform.setNavigation(navigation);
  await platform.init();
  const urlRouter = createRouter({ navigation, history: platform.history });
  urlRouter.attach();
  const client = new Client(platform);
  if (q.get("password")) {
    // hydrogen's own login: discovery (.well-known, versions), GET /login, then the password.
    const options = await client.queryLogin(q.get("hs")).result;
    if (!options || !options.password) throw new Error("no password login offered");
    client.startWithLogin(options.password(q.get("username"), q.get("password")));
  } else {
    await client.startWithAuthData({
      accessToken: q.get("token"), deviceId: q.get("device"), userId: q.get("user"), homeserver: q.get("hs"),
    });
  }
  await client.loadStatus.waitFor((s) => s === LoadStatus.Ready || s === LoadStatus.Error || s === LoadStatus.LoginFailed).promise;
  if (client.loadError || client.loginFailure) {
    throw new Error(String(client.loadError?.message || client.loginFailure));
  }
  const { session } = client;
  const roomId = q.get("room");
  const features = await FeatureSet.load(platform.settingsStorage);
  const room = session.rooms.get(roomId);
  if (!room) throw new Error("room not in the session: " + roomId);
  await mountRoom(session, platform, navigation, urlRouter, features, room);
  state.status = "ready";
  // A joined room that leaves session.rooms was left or kicked: show it archived.
  session.rooms.subscribe({
    onRemove: async (key) => {
      if (key !== roomId) return;
      try {
        const archived = await session.loadArchivedRoom(roomId);
        await mountRoom(session, platform, navigation, urlRouter, features, archived);
        state.archived = true;
      } catch (e) {
        state.error = String(e && e.stack || e);
      }
    },
    onAdd() {}, onUpdate() {}, onReset() {},
  });
}

main().catch((e) => {
  state.status = "error";
  state.error = String(e && e.stack || e);
});
