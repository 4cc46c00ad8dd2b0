// SPDX-License-Identifier: MIT
// Approvals a person completes on a phone (issue 16), in Debian's Chromium with its
// virtual authenticator (CDP WebAuthn domain: ctap2, internal transport, resident keys,
// user verification on), against qund servers this test starts itself (the page must
// be on http://localhost:PORT, the origin passkeys are bound to, and one server runs a
// policy pack that asks the web for a typed name and the password):
//   - a "phone" (phone viewport) registers, adds a passkey on Security, and a "desktop"
//     of the same user dissolves: the desktop shows a QR code whose URL (approve_url)
//     the phone opens — signed out first, so it signs in and comes back — the phone
//     sees the group's name, the action, the counts and the asking device, approves
//     with its passkey, and the desktop goes on live (over the event stream; its
//     requests are counted: no polling);
//   - a new desktop (the risk engine's new-device step-up): qr plus one of passkey or
//     authenticator code; the desktop enrols an authenticator app from the QR the steps
//     show and gives a code;
//   - the same user's phone with no second device approves on itself;
//   - typed name and password step-up (second server); an unknown requirement shape
//     shows a clear message; a declined request stops the desktop; removing a passkey
//     needs the password;
// each in English and Chinese, every page shot at desktop and phone width and checked
// with axe-core.  Any console error or page error fails the run.

import { createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer as startOwn, stopServers } from './servers.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, '../..');
const QUND = process.env.QUND;
const SHOTS = process.env.SHOTS || 'build/screenshots';
const AXE = readFileSync(join(HERE, 'node_modules/axe-core/axe.min.js'), 'utf8');
const PASSWORD = 'correct horse battery';
if (!QUND) throw new Error('run through tests/browser/run.sh (QUND)');
mkdirSync(SHOTS, { recursive: true });

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const errors = [];
let shotNo = 0;
let axeRuns = 0;
let failures = 0;
const log = (...a) => console.log(...a);
const openPages = [];

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failures++;
    log(`FAIL ${name}: ${e.stack || e}`);
    for (const p of openPages) { // what each open page showed, to see why
      if (!p.isClosed()) log(`  page ${p.url()}: ${(await p.textContent("#view").catch(() => "")).slice(-700)}`);
    }
    throw e;
  }
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

// ---- servers ----

// A qund of the test's own (servers.mjs) with cheap passwords, passkeys for its origin,
// and extra settings.
const startServer = (extra = []) => startOwn('approve', (url) => ['--set', 'argon2_memlimit_kib=64',
  '--set', `webauthn_origin=${url}`, '--set', 'webauthn_rp_id=localhost', ...extra]);

async function api(srv, method, path, body, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = 'Bearer ' + token;
  const res = await fetch(srv.url + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.status === 204 ? null : res.json();
}

const advance = async (srv, seconds) => (await api(srv, 'POST', '/v1/test/clock', { advance: seconds })).now;

// RFC 6238 (SHA-1, 6 digits, 30 s) at the server's clock.
function totp(secretB32, now) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secretB32.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(now / 30)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const o = mac[mac.length - 1] & 15;
  return String((mac.readUInt32BE(o) & 0x7fffffff) % 1000000).padStart(6, '0');
}

// ---- pages ----

async function setLang(page, l) {
  await page.selectOption('#lang', l);
  await page.waitForFunction(
    (want) => document.documentElement.lang.startsWith(want) && !document.getElementById('view').hasAttribute('aria-busy'),
    l,
  );
}

async function axeCheck(page, name) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE);
  await page.waitForFunction(() => document.getAnimations().every((a) => a.playState !== 'running'));
  const violations = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
  });
  check(violations.length === 0, `${name}: axe-core violations:\n  ${violations.join('\n  ')}`);
  axeRuns++;
}

// One screenshot at each width (the page's own width last), axe-core at both.
async function shot(page, name) {
  const n = String(++shotNo).padStart(2, '0');
  const own = page.viewportSize();
  const text = await page.evaluate(() => document.body.innerText);
  check(!/\b(null|undefined|NaN)\b|\[object /.test(text), `${name}: the page shows null, undefined, NaN or an object`);
  for (const [w, size] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await page.setViewportSize(size);
    await axeCheck(page, `${name} (${w})`);
    await page.screenshot({ path: join(SHOTS, `approve-${n}-${name}-${w}.png`), fullPage: true });
  }
  await page.setViewportSize(own);
}

// A browser context with a virtual platform authenticator that verifies the user.
async function device(browser, { phone = false, lang = 'en', expect = [] } = {}) {
  const context = await browser.newContext({ viewport: phone ? PHONE : DESKTOP, locale: lang === 'zh' ? 'zh-CN' : 'en-US' });
  const page = await context.newPage();
  openPages.push(page);
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', { options: {
    protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
    isUserVerified: true, automaticPresenceSimulation: true,
  } });
  const d = { context, page, cdp, expect, requests: [] };
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const what = `${m.text()} ${m.location().url}`;
    // An event ticket the test clock aged between its issue and its use is refused; the
    // console asks for a new one (live.js).  Anything else is an error.
    if (/status of 401 .*\/v1\/events\?ticket=/.test(what)) return;
    if (d.expect.some((re) => re.test(what))) return;
    errors.push(`${lang} console: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => errors.push(`${lang} page error: ${e.message}`));
  page.on('request', (r) => d.requests.push(`${r.method()} ${new URL(r.url()).pathname}`));
  return d;
}

async function registerAs(srv, d, username, lang) {
  await d.page.goto(srv.url + '/');
  await d.page.waitForSelector('#register');
  await setLang(d.page, lang);
  await d.page.fill('input[name=new-username]', username);
  await d.page.fill('input[name=new-password]', PASSWORD);
  await d.page.fill('input[name=new-password-again]', PASSWORD);
  await d.page.click('#register');
  await d.page.waitForSelector('#my-username');
}

async function signIn(srv, d, username, lang) {
  await d.page.goto(srv.url + '/');
  await d.page.waitForSelector('#signin');
  await setLang(d.page, lang);
  await d.page.fill('input[name=username]', username);
  await d.page.fill('input[name=password]', PASSWORD);
  await d.page.click('#signin');
  await d.page.waitForFunction(() => sessionStorage.getItem('qun.token'));
}

const tokenOf = (d) => d.page.evaluate(() => sessionStorage.getItem('qun.token'));

async function addPasskey(srv, d, label, name) {
  await d.page.goto(srv.url + '/#/me/security');
  await d.page.waitForSelector('#passkey-add');
  await d.page.fill('#passkey-label', label);
  await d.page.click('#passkey-add');
  await d.page.waitForSelector(`#passkeys li.passkey`);
  check((await d.page.textContent('#passkeys')).includes(label), `the list names the passkey ${label}`);
  if (name) await shot(d.page, name);
}

async function newGroup(srv, d, name) {
  return (await api(srv, 'POST', '/v1/groups', { name }, await tokenOf(d))).id;
}

// Dissolve gid from d's page up to the verification steps (the name typed, the
// button pressed); password when the preview asks for it.
async function startDissolve(srv, d, gid, name, { password = false } = {}) {
  await d.page.goto(`${srv.url}/#/g/${gid}/dissolve`);
  await d.page.waitForSelector('#preview-btn');
  await d.page.click('#preview-btn');
  await d.page.waitForSelector('#confirm-name');
  await d.page.fill('#confirm-name', name);
  if (password) await d.page.fill('form.confirm input[name=password]', PASSWORD);
  await d.page.click('#dissolve-btn');
}

// The phone opens the approval page at url and approves with its passkey.
async function phoneApproves(d, url, shotName, { signedOut = false, username } = {}) {
  if (signedOut) {
    // Opened in a signed-out tab: sign in first, then the page comes back.
    await d.page.evaluate(() => sessionStorage.clear());
    await d.page.goto(url);
    await d.page.waitForSelector('#signin-first');
    if (shotName) await shot(d.page, `${shotName}-signin-first`);
    await d.page.fill('input[name=username]', username);
    await d.page.fill('input[name=password]', PASSWORD);
    await d.page.click('#signin');
  } else {
    await d.page.goto(url);
  }
  await d.page.waitForSelector('#approve-btn');
  if (shotName) await shot(d.page, shotName);
  await d.page.click('#approve-btn');
  await d.page.waitForSelector('#approve-done');
  check((await d.page.getAttribute('#approve-state', 'data-state')) === 'approved', 'the page says approved');
}

async function desktopContinues(srv, d, gid) {
  await d.page.waitForFunction((g) => location.hash === `#/g/${g}/dissolution`, gid, { timeout: 20000 });
  await d.page.waitForSelector('#dissolution-state');
}

// ---- the scenarios ----

const W = {
  en: { group: 'Class 3B parents', action: 'Dissolve the group', web: 'a web browser', choice: 'authenticator', here: 'Approve on this device' },
  zh: { group: '三年二班家长群', action: '解散群', web: '网页浏览器', choice: '身份验证器', here: '在本设备上用通行密钥批准' },
};

async function qrFlow(browser, srv, lang) {
  const w = W[lang];
  const user = `${lang}phone${Date.now() % 100000}`;
  const phone = await device(browser, { phone: true, lang });
  const desk = await device(browser, { lang });
  let gid = '';
  let url = '';
  await step(`${lang}: the phone registers and adds a passkey on Security`, async () => {
    await registerAs(srv, phone, user, lang);
    await addPasskey(srv, phone, lang === 'zh' ? '我的手机' : 'My phone', `security-${lang}`);
  });
  await step(`${lang}: the desktop dissolves and shows a QR code of the approval page`, async () => {
    await signIn(srv, desk, user, lang);
    await advance(srv, 7 * 86400 + 1); // the desktop is an established device now
    gid = await newGroup(srv, desk, w.group);
    await api(srv, 'POST', `/v1/groups/${gid}/messages`, { text: 'hello' }, await tokenOf(desk));
    await startDissolve(srv, desk, gid, w.group);
    await desk.page.waitForSelector('#qr img');
    url = (await desk.page.textContent('#qr-link')).trim();
    const id = await desk.page.getAttribute('#qr', 'data-challenge');
    check(url === `${srv.url}/app/approve?c=${id}&n=${new URL(url).searchParams.get('n')}` && new URL(url).searchParams.get('n').length === 43,
      `the QR's URL is the approval page: ${url}`);
    await shot(desk.page, `qr-${lang}`);
  });
  await step(`${lang}: the phone opens it, signs in, sees what it approves and approves with its passkey`, async () => {
    const before = desk.requests.length;
    await phoneApproves(phone, url, `approve-page-${lang}`, { signedOut: lang === 'en', username: user });
    await desktopContinues(srv, desk, gid);
    const facts = await phone.page.textContent('#approve-facts');
    check(facts.includes(w.group) && facts.includes(w.action) && facts.includes(w.web), `the page names the group, action, device: ${facts}`);
    check(!facts.includes(gid), 'no group id on the page');
    check(/\b1\b/.test(await phone.page.textContent('#approve-impact')), 'the counts show');
    await shot(phone.page, `approved-${lang}`);
    // Live: the desktop read the challenge at most once per stream opening.
    const polls = desk.requests.slice(before).filter((r) => /^GET \/v1\/challenges\/c_/.test(r)).length;
    check(polls <= 2, `the desktop did not poll (${polls} reads of the challenge)`);
  });
  await step(`${lang}: a new desktop gets the risk step-up: qr, then one of passkey or authenticator code`, async () => {
    const desk2 = await device(browser, { lang, expect: [/status of 428/] });
    await signIn(srv, desk2, user, lang); // a device first seen now, beside the older phone
    const g2 = await newGroup(srv, desk2, w.group);
    await startDissolve(srv, desk2, g2, w.group);
    await desk2.page.waitForSelector('#qr img');
    await phoneApproves(phone, (await desk2.page.textContent('#qr-link')).trim());
    await desk2.page.waitForSelector('#step-choice', { timeout: 20000 });
    check((await desk2.page.textContent('#more-steps')).includes(w.choice), 'the step-up is offered');
    check(!(await desk2.page.$('#view .error')), 'the step-up is a next step, not an error');
    await desk2.page.check('input[name=step-method][value=totp]');
    await shot(desk2.page, `step-up-choice-${lang}`);
    await desk2.page.click('#step-choice-go');
    await desk2.page.waitForSelector('#totp-qr');
    await shot(desk2.page, `totp-enrol-${lang}`);
    const secret = (await desk2.page.textContent('#totp-secret')).trim();
    check(await desk2.page.isDisabled('#totp-enrol-go') && await desk2.page.isVisible('#totp-enrol-go-why'), 'a disabled button says why');
    await desk2.page.fill('#totp-enrol-code', totp(secret, await advance(srv, 0)));
    await desk2.page.click('#totp-enrol-go');
    await desk2.page.waitForSelector('#totp-enrolled');
    const now = await advance(srv, 30); // the next code: the first one is used up
    await desk2.page.fill('#step-totp-input', totp(secret, now));
    await shot(desk2.page, `totp-code-${lang}`);
    await desk2.page.click('#step-totp-go');
    await desktopContinues(srv, desk2, g2);
    await desk2.context.close();
  });
  return { phone, desk, user };
}

async function phoneAlone(browser, srv, lang) {
  const w = W[lang];
  const phone = await device(browser, { phone: true, lang });
  await step(`${lang}: a phone with no second device approves on itself with its passkey`, async () => {
    await registerAs(srv, phone, `${lang}solo${Date.now() % 100000}`, lang);
    await addPasskey(srv, phone, 'Pixel');
    const gid = await newGroup(srv, phone, w.group);
    await startDissolve(srv, phone, gid, w.group);
    await phone.page.waitForSelector('#step-passkey-go-qr');
    check((await phone.page.textContent('#steps')).includes(w.here), 'the step offers this device instead of a QR code');
    check(await phone.page.locator('#qr-image').count() === 0, 'no QR code shown to itself');
    await shot(phone.page, `approve-here-${lang}`);
    await phone.page.click('#step-passkey-go-qr');
    await desktopContinues(srv, phone, gid);
    await shot(phone.page, `approved-here-${lang}`);
  });
  await phone.context.close();
}

async function declined(browser, srv, lang, phone, user) {
  const w = W[lang];
  const desk = await device(browser, { lang, expect: [/status of 409/] });
  await step(`${lang}: the phone declines, the desktop stops and says so`, async () => {
    await signIn(srv, desk, user, lang);
    await advance(srv, 7 * 86400 + 1);
    const gid = await newGroup(srv, desk, w.group);
    await startDissolve(srv, desk, gid, w.group);
    await desk.page.waitForSelector('#qr img');
    await phone.page.goto((await desk.page.textContent('#qr-link')).trim());
    await phone.page.click('#decline-btn');
    await phone.page.waitForSelector('#decline-done');
    await desk.page.waitForSelector('[data-code="CHALLENGE_DECLINED"]', { timeout: 20000 });
    check(await desk.page.isEnabled('#dissolve-btn'), 'the button is usable again');
    await shot(desk.page, `declined-${lang}`);
  });
  await desk.context.close();
}

async function passkeyRemoval(srv, d, lang) {
  await step(`${lang}: removing a passkey asks for the password`, async () => {
    d.expect.push(/status of 401/, /status of 428/);
    await d.page.goto(srv.url + '/#/me/security');
    await d.page.waitForSelector('#passkeys li.passkey');
    await d.page.click('#passkeys li.passkey summary');
    const go = d.page.locator('#passkeys li.passkey button.danger');
    await go.click(); // no password: the server asks for it
    await d.page.waitForSelector('#passkeys [data-code="STEP_UP_REQUIRED"]');
    await d.page.fill('#passkeys li.passkey input[type=password]', 'not my password');
    await go.click();
    await d.page.waitForSelector('#passkeys [data-code="BAD_CREDENTIALS"]');
    await shot(d.page, `passkey-remove-${lang}`);
    await d.page.fill('#passkeys li.passkey input[type=password]', PASSWORD);
    await go.click();
    await d.page.waitForSelector('p#passkeys');
  });
}

async function typedAndPassword(browser, srv, lang) {
  const w = W[lang];
  const d = await device(browser, { lang, expect: [/status of 428/] });
  await step(`${lang}: typed name and password step-up (a pack asking the web for them)`, async () => {
    await registerAs(srv, d, `${lang}typed${Date.now() % 100000}`, lang);
    const gid = await newGroup(srv, d, w.group);
    await d.page.goto(`${srv.url}/#/g/${gid}/dissolve`);
    await d.page.click('#preview-btn');
    await d.page.waitForSelector('#confirm-name');
    const reqs = await d.page.textContent('#requirements');
    check(reqs.includes(lang === 'zh' ? '名称' : 'name') && reqs.includes(lang === 'zh' ? '密码' : 'password'), `the preview names them: ${reqs}`);
    await d.page.fill('#confirm-name', w.group.slice(1));
    check(await d.page.isDisabled('#dissolve-btn'), 'a wrong name keeps the button disabled');
    await d.page.fill('#confirm-name', w.group);
    await d.page.fill('form.confirm input[name=password]', PASSWORD);
    await shot(d.page, `typed-password-${lang}`);
    await d.page.click('#dissolve-btn');
    await desktopContinues(srv, d, gid);
  });
  await step(`${lang}: an unknown requirement shape is a clear message`, async () => {
    const gid = await newGroup(srv, d, `${w.group} 2`);
    await d.page.route('**/dissolution/preview', async (route) => {
      const res = await route.fetch();
      const body = await res.json();
      body.requirements = [{ method: 'retina_scan' }];
      await route.fulfill({ response: res, json: body });
    });
    await d.page.goto(`${srv.url}/#/g/${gid}/dissolve`);
    await d.page.click('#preview-btn');
    await d.page.waitForSelector('#confirm-name');
    check((await d.page.textContent('#requirements')).includes(lang === 'zh' ? '无法识别' : 'does not understand'), 'the preview says it');
    await d.page.fill('#confirm-name', `${w.group} 2`);
    await d.page.click('#dissolve-btn');
    await d.page.waitForSelector('#requirements-unexpected');
    check(await d.page.isEnabled('#dissolve-btn'), 'the button is usable again');
    await shot(d.page, `unknown-shape-${lang}`);
    await d.page.unroute('**/dissolution/preview');
  });
  await d.context.close();
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
try {
  const s1 = await startServer();
  // The second pack: the web needs the preview's token and the name typed back, and
  // standard groups the password again.
  const pol = mkdtempSync(join(tmpdir(), 'qun-approve-pol.'));
  const v = JSON.parse(readFileSync(join(REPO, 'policies/verification.json'), 'utf8'));
  v.platforms.web = ['confirm', 'typed_name'];
  writeFileSync(join(pol, 'verification.json'), JSON.stringify(v));
  const k = JSON.parse(readFileSync(join(REPO, 'policies/kinds.json'), 'utf8'));
  k.kinds.standard = { step_up_required: true };
  writeFileSync(join(pol, 'kinds.json'), JSON.stringify(k));
  const s2 = await startServer(['--set', `policies=${pol}`]);
  for (const lang of ['en', 'zh']) {
    const { phone, user } = await qrFlow(browser, s1, lang);
    await declined(browser, s1, lang, phone, user);
    await passkeyRemoval(s1, phone, lang);
    await phone.context.close();
    await phoneAlone(browser, s1, lang);
    await typedAndPassword(browser, s2, lang);
  }
  rmSync(pol, { recursive: true, force: true });
  await step('no console errors', async () => {
    check(errors.length === 0, `console errors:\n${errors.join('\n')}`);
  });
} catch (e) {
  if (!failures) { // thrown outside a step (a server that did not start, say)
    failures++;
    log(`FAIL ${e.stack || e}`);
  }
} finally {
  await browser.close();
  await stopServers(errors);
}
if (failures || errors.length) {
  if (errors.length) log(errors.join('\n'));
  process.exit(1);
}
log(`approval tests passed; ${shotNo * 2} screenshots, ${axeRuns} axe-core checks without a violation`);
