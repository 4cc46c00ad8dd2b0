// SPDX-License-Identifier: MIT
// Real web Matrix clients in a real browser (Debian's Chromium through playwright-core),
// against the qund that run.sh started (QUN_URL), their pages served from a second
// origin (PAGES_URL), so every request crosses origins as for a hosted client.
//
// hydrogen (hydrogen-view-sdk): bob's session starts from a token the test got from
// POST /login (and, in a second page, through hydrogen's own discovery and login); his room's timeline shows a message alice posted through /v1; a message
// typed in hydrogen's composer reaches GET /v1/groups/{id}/messages; an image alice
// sends renders through authenticated media and hydrogen's service worker (when the
// server has Matrix media); after alice dissolves the group through /v1, hydrogen shows
// "You were kicked from the room by … because: Group dissolved …".
//
// matrix-js-sdk: bob's client starts as Element's does (push rules, capabilities, a
// filter made and, on a second start, verified, the inline filter of the first sync),
// reaches PREPARED, reads the room's timeline, sends a message that reaches /v1, and after
// alice dissolves the group with a successor, getVisibleRooms() holds the successor and
// not the old room.
//
// Each client is photographed at desktop (1280x800) and phone (390x844) width into
// SHOTS/matrix-*.png.  An uncaught page error fails the run.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const URL = process.env.QUN_URL;
const PAGES = process.env.PAGES_URL;
const SHOTS = process.env.SHOTS || 'build/screenshots';
if (!URL || !PAGES) throw new Error('run through tests/browser-matrix/run.sh (QUN_URL and PAGES_URL)');
mkdirSync(SHOTS, { recursive: true });

const SERVER = 'qun.test';
const PASSWORD = 'correct horse';
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const pageErrors = [];
const waiting = [];
const consoleLines = []; // printed when a step fails
let failures = 0;

function log(...a) {
  console.log(...a);
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

async function step(name, fn) {
  const t0 = Date.now();
  try {
    const waits = await fn();
    log(`${waits ? 'wait' : 'ok  '} ${name} (${Date.now() - t0} ms)${waits ? ': ' + waits : ''}`);
  } catch (e) {
    failures++;
    log(`FAIL ${name}: ${e.stack || e}`);
    throw e;
  }
}

async function api(method, path, token, body, status) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = 'Bearer ' + token;
  const r = await fetch(URL + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  if (status !== undefined && r.status !== status) throw new Error(`${method} ${path}: ${r.status} ${text.slice(0, 400)}`);
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

async function until(what, fn, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// A qun user (POST /v1/users, a cli session for /v1) and the Matrix side of it.
async function user(name) {
  const username = name + Math.random().toString(16).slice(2, 8);
  await api('POST', '/v1/users', null, { username, password: PASSWORD }, 201);
  const s = (await api('POST', '/v1/sessions', null, { username, password: PASSWORD, device_id: 'dev-' + username, platform: 'cli' }, 201)).body;
  return { username, token: s.token, openid: s.openid, mxid: `@${username.toLowerCase()}:${SERVER}` };
}

async function matrixLogin(u, deviceId) {
  const r = await api('POST', '/_matrix/client/v3/login', null, {
    type: 'm.login.password', identifier: { type: 'm.id.user', user: u.username }, password: PASSWORD, device_id: deviceId,
  }, 200);
  return { accessToken: r.body.access_token, deviceId: r.body.device_id, userId: r.body.user_id };
}

async function group(owner, name, members) {
  const g = (await api('POST', '/v1/groups', owner.token, { name }, 201)).body;
  for (const m of members) await api('POST', `/v1/groups/${g.id}/members`, owner.token, { openid: m.openid }, 201);
  return g.id;
}

const post = (u, gid, text) => api('POST', `/v1/groups/${gid}/messages`, u.token, { text }, 201);

async function v1Texts(u, gid) {
  return (await api('GET', `/v1/groups/${gid}/messages?limit=200`, u.token, undefined, 200)).body.items.map((m) => m.text);
}

// Dissolution through /v1 as the owner's cli session (preview, confirmation token, the
// name typed back); with cooling-off 0 the group is dissolved as soon as the job runs.
async function dissolve(owner, gid, extra = {}) {
  const p = (await api('POST', `/v1/groups/${gid}/dissolution/preview`, owner.token, { messages: 'keep', ...extra }, 200)).body;
  await api('POST', `/v1/groups/${gid}/dissolution`, owner.token,
    { messages: 'keep', confirmation_token: p.confirmation_token, typed_name: p.name, ...extra }, 202);
  return until(`${gid} dissolved`, async () => {
    const g = await api('GET', `/v1/groups/${gid}`, owner.token);
    return g.status === 200 && g.body.state === 'dissolved' ? g.body : null;
  });
}

async function shoot(page, name) {
  for (const [size, vp] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await page.setViewportSize(vp);
    await page.waitForTimeout(300);
    // Show the newest entries: hydrogen scrolls down when a tile arrives, before an image
    // in it has its height.
    await page.evaluate(() => document.querySelectorAll('.Timeline_scroller, #timeline').forEach((el) => { el.scrollTop = el.scrollHeight; }));
    await page.waitForTimeout(100);
    await page.screenshot({ path: join(SHOTS, `matrix-${name}-${size}.png`) });
  }
  await page.setViewportSize(DESKTOP);
}

function pageQuery(session, extra = {}) {
  return new URLSearchParams({ hs: URL, token: session.accessToken, user: session.userId, device: session.deviceId, ...extra }).toString();
}

async function newPage(browser, label) {
  const context = await browser.newContext({ viewport: DESKTOP });
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${label}: ${e.stack || e}`));
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') consoleLines.push(`${label} ${m.type()}: ${m.text()}`); });
  const requests = [];
  context.on('request', (r) => { if (r.url().startsWith(URL)) requests.push(`${r.method()} ${r.url().slice(URL.length)}`); });
  return { context, page, requests };
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const t0 = Date.now();
try {
  const alice = await user('alice');
  const bob = await user('bob');

  // ---- hydrogen -------------------------------------------------------------------
  const gid = await group(alice, 'book club', [bob]);
  const rid = `!${gid}:${SERVER}`;
  await post(alice, gid, 'hello from qun');
  const hydro = await newPage(browser, 'hydrogen');
  const hp = hydro.page;

  await step('hydrogen: starts from a token and shows a message posted through /v1', async () => {
    const s = await matrixLogin(bob, 'HYDROGEN');
    await hp.goto(`${PAGES}/hydrogen/index.html?${pageQuery(s, { room: rid })}`);
    await hp.waitForFunction(() => window.qun && window.qun.status !== 'starting', null, { timeout: 30000 });
    const st = await hp.evaluate(() => window.qun);
    check(st.status === 'ready', `hydrogen status ${st.status}: ${st.error}`);
    await hp.locator('.Timeline').getByText('hello from qun').waitFor({ timeout: 20000 });
    check(await hp.evaluate(() => navigator.serviceWorker.controller !== null || navigator.serviceWorker.getRegistration().then((r) => !!r)), 'service worker registered');
  });

  await step('hydrogen: its own password login (queryLogin, startWithLogin) reaches the same room', async () => {
    const other = await newPage(browser, 'hydrogen-login');
    const qs = new URLSearchParams({ hs: URL, username: bob.username, password: PASSWORD, room: rid }).toString();
    await other.page.goto(`${PAGES}/hydrogen/index.html?${qs}`);
    await other.page.waitForFunction(() => window.qun && window.qun.status !== 'starting', null, { timeout: 30000 });
    const st = await other.page.evaluate(() => window.qun);
    check(st.status === 'ready', `hydrogen status ${st.status}: ${st.error}`);
    await other.page.locator('.Timeline').getByText('hello from qun').waitFor({ timeout: 20000 });
    const calls = other.requests.join('\n');
    check(/GET \/\.well-known\/matrix\/client/.test(calls) && /GET \/_matrix\/client\/r0\/login/.test(calls) &&
      /POST \/_matrix\/client\/r0\/login/.test(calls), `discovery and login: ${calls}`);
    await other.context.close();
  });

  await step('hydrogen: a message typed in the composer reaches GET /v1/…/messages', async () => {
    const input = hp.locator('.MessageComposer_input textarea, .MessageComposer_input input').first();
    await input.click();
    await input.fill('typed in hydrogen');
    await input.press('Enter');
    await until('the typed message on /v1', async () => (await v1Texts(alice, gid)).includes('typed in hydrogen'));
    await hp.locator('.Timeline').getByText('typed in hydrogen').waitFor({ timeout: 20000 });
    await shoot(hp, 'hydrogen-timeline');
  });

  await step('hydrogen: an image renders through authenticated media and the service worker', async () => {
    const cfg = await api('GET', '/_matrix/client/v1/media/config', alice.token);
    if (cfg.status !== 200) {
      const why = `waiting for Matrix media (GET /_matrix/client/v1/media/config answered ${cfg.status})`;
      waiting.push(`hydrogen image: ${why}`);
      return why;
    }
    const a = await matrixLogin(alice, 'ALICEIMG');
    // A 96x64 checkerboard PNG, uploaded and sent by alice over Matrix.
    const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAGAAAABACAIAAABqVuVZAAAAgUlEQVR42u3YsQ0AIAhFQRZwcmdyNp2BUv4RahKufLXObu1tzu/3' +
      'CxAgQIAAAQIECBAgQIAAAQIEaBhQ2sPd+4AAAQIECBAgQIAAAQIECBAgQNOABDNFERAgQIAAAQIECBAgQIAAAQKUBSSYKYqAAAECBAgQIECA' +
      'AAECBAgQoCigByMt2v40fPjsAAAAAElFTkSuQmCC', 'base64');
    const up = await fetch(`${URL}/_matrix/media/v3/upload?filename=checkers.png`, {
      method: 'POST', headers: { Authorization: 'Bearer ' + a.accessToken, 'Content-Type': 'image/png' }, body: png,
    });
    check(up.status === 200, `upload answered ${up.status}`);
    const uri = (await up.json()).content_uri;
    await api('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(rid)}/send/m.room.message/img1`, a.accessToken,
      { msgtype: 'm.image', body: 'checkers.png', url: uri, info: { mimetype: 'image/png', size: png.length, w: 96, h: 64 } }, 200);
    const img = hp.locator('.Timeline img.picture, .Timeline .media img').last();
    await img.waitFor({ timeout: 20000 });
    await until('the image loaded', () => img.evaluate((el) => el.complete && el.naturalWidth > 0));
    // The page asks for the authenticated route without a token of its own: the service
    // worker adds it, since the same URL without one is refused.
    const src = await img.evaluate((el) => el.src);
    check(src.startsWith(`${URL}/_matrix/client/v1/media/`) && !src.includes('access_token'), `image src ${src}`);
    const bare = await fetch(src);
    check(bare.status === 401, `${src} without a token answered ${bare.status}`);
    check(await hp.evaluate(() => navigator.serviceWorker.controller !== null), 'the service worker controls the page');
    await shoot(hp, 'hydrogen-image');
  });

  await step('hydrogen: after the dissolution it shows the removal with its reason', async () => {
    await dissolve(alice, gid);
    const text = hp.locator('.DisabledComposerView');
    await text.waitFor({ timeout: 30000 });
    // With cooling-off 0 the request and the mark are one commit, so one sync moves the
    // room from join to leave; Hydrogen may first draw the joined room with the new power
    // levels ("You do not have the powerlevel ...") and then the archived one.  What it
    // settles on is what a person reads.
    const seen = [];
    const said = await until('the kick with its reason', async () => {
      const t = await text.innerText();
      if (!seen.includes(t)) seen.push(t);
      return /You were kicked from the room by .* because: Group dissolved/.test(t) ? t : null;
    }, 10000).catch(() => null);
    log(`     hydrogen's composer said: ${JSON.stringify(seen)}`);
    check(said, `archived text: ${seen.join(' | ')}`);
    check(await hp.evaluate(() => window.qun.archived), 'the archived room is shown');
    await hp.locator('.Timeline').getByText(/was kicked from the room by .*: Group dissolved by @/).waitFor({ timeout: 10000 });
    await shoot(hp, 'hydrogen-dissolved');
  });
  const hydroRequests = new Set(hydro.requests.map((r) => r.replace(/\?.*/, '').replace(/![^/]*/g, '{room}').replace(/(@|%40)[^/]*/g, '{user}')));
  log(`     hydrogen called: ${[...hydroRequests].sort().join(', ')}`);
  await hydro.context.close();

  // ---- matrix-js-sdk --------------------------------------------------------------
  const gid2 = await group(alice, 'garden', [bob]);
  const rid2 = `!${gid2}:${SERVER}`;
  await post(alice, gid2, 'welcome to the garden');
  const js = await newPage(browser, 'matrix-js-sdk');
  const jp = js.page;
  const s2 = await matrixLogin(bob, 'JSSDK');
  const jsUrl = `${PAGES}/jssdk/index.html?${pageQuery(s2, { room: rid2 })}`;
  const prepared = async () => {
    await jp.waitForFunction(() => window.qun && ['PREPARED', 'SYNCING', 'ERROR', 'error'].includes(window.qun.status), null, { timeout: 30000 });
    const st = await jp.evaluate(() => ({ status: window.qun.status, error: window.qun.error }));
    check(st.status === 'PREPARED' || st.status === 'SYNCING', `js-sdk status ${st.status}: ${st.error}`);
  };

  await step('matrix-js-sdk: startClient reaches PREPARED and reads the timeline', async () => {
    await jp.goto(jsUrl);
    await prepared();
    const tl = await jp.evaluate((r) => window.qun.timeline(r), rid2);
    check(tl.some((e) => e.type === 'm.room.message' && e.body === 'welcome to the garden'), `timeline: ${JSON.stringify(tl)}`);
    const calls = js.requests.join('\n');
    check(/GET \/_matrix\/client\/v3\/pushrules\//.test(calls), 'push rules fetched');
    check(/POST \/_matrix\/client\/v3\/user\/[^/]+\/filter/.test(calls), 'filter created');
    check(/GET \/_matrix\/client\/v3\/sync\?filter=%7B/.test(calls), 'first sync with an inline filter');
    check(/GET \/_matrix\/client\/v3\/capabilities/.test(calls), 'capabilities fetched');
  });

  await step('matrix-js-sdk: a message it sends reaches /v1', async () => {
    const id = await jp.evaluate((r) => window.qun.send(r, 'sent from matrix-js-sdk'), rid2);
    check(id.startsWith(`$${gid2}.m`), `event id ${id}`);
    await until('the js-sdk message on /v1', async () => (await v1Texts(alice, gid2)).includes('sent from matrix-js-sdk'));
    await jp.getByText('sent from matrix-js-sdk').waitFor({ timeout: 10000 });
  });

  await step('matrix-js-sdk: a second start verifies its stored filter', async () => {
    const before = js.requests.length;
    await jp.reload();
    await prepared();
    const calls = js.requests.slice(before).join('\n');
    check(/GET \/_matrix\/client\/v3\/user\/[^/]+\/filter\/[^/?\s]+/.test(calls), `filter verified: ${calls}`);
    await jp.getByText('sent from matrix-js-sdk').waitFor({ timeout: 10000 });
    await shoot(jp, 'jssdk-timeline');
  });

  await step('matrix-js-sdk: after a dissolution with a successor, getVisibleRooms() shows the successor only', async () => {
    await dissolve(alice, gid2, { successor_name: 'garden 2' });
    const mine = (await api('GET', '/v1/groups?limit=200', alice.token, undefined, 200)).body.items;
    const next = mine.find((x) => x.name === 'garden 2');
    check(next, `the successor group in alice's list: ${JSON.stringify(mine).slice(0, 300)}`);
    const succ = `!${next.id}:${SERVER}`;
    await until('the successor alone in the visible rooms', () => jp.evaluate(({ old, fresh }) => {
      const v = window.qun.visibleRooms();
      return v.includes(fresh) && !v.includes(old);
    }, { old: rid2, fresh: succ }), 30000);
    const all = await jp.evaluate(() => window.qun.allRooms());
    check(all.some((r) => r.id === rid2 && r.membership === 'leave'), `old room left: ${JSON.stringify(all)}`);
    check(all.some((r) => r.id === succ && r.membership === 'join'), `successor joined: ${JSON.stringify(all)}`);
    await jp.evaluate((r) => window.qun.select(r), succ);
    await jp.getByText('continues an earlier room').waitFor({ timeout: 10000 });
    await shoot(jp, 'jssdk-successor');
  });
  const jsRequests = new Set(js.requests.map((r) => r.replace(/\?.*/, '').replace(/![^/]*/g, '{room}').replace(/(@|%40)[^/]*/g, '{user}').replace(/\/filter\/[^/]+$/, '/filter/{id}').replace(/\/send\/([^/]+)\/[^/]+$/, '/send/$1/{txn}')));
  log(`     matrix-js-sdk called: ${[...jsRequests].sort().join(', ')}`);
  await js.context.close();
  check(pageErrors.length === 0, `page errors:\n${pageErrors.join('\n')}`);
} catch (e) {
  if (!failures) log(`FAIL ${e.stack || e}`);
  failures++;
  if (pageErrors.length) log(`page errors:\n${pageErrors.join('\n')}`);
  if (consoleLines.length) log(`console (last 30):\n${consoleLines.slice(-30).join('\n')}`);
} finally {
  await browser.close();
}
for (const w of waiting) log(`WAIT ${w}`);
log(`browser-matrix: ${failures ? 'FAILED' : 'passed'} in ${((Date.now() - t0) / 1000).toFixed(1)} s` +
  (waiting.length ? `, ${waiting.length} step(s) waiting` : ''));
process.exit(failures ? 1 : 0);
