// SPDX-License-Identifier: MIT
// What the browser tests run against run.sh's qund (QUN_URL) share: named steps that
// count failures, checks, axe-core on a page (every violation fails), the API as a
// test client, users made through it, a browser context per person whose console
// errors and uncaught page errors are collected, and the end of a run (exit 1 on any
// failure or collected error).  Used by notify.test.mjs and console16.test.mjs.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const URL = process.env.QUN_URL;
export const PASSWORD = 'correct horse battery';
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };
const AXE = readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'node_modules/axe-core/axe.min.js'), 'utf8');

// errors: console and page errors nobody expected; failures: failed steps.
export const run = { errors: [], failures: 0, axeRuns: 0 };

export async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    run.failures++;
    console.log(`FAIL ${name}: ${e.stack || e}`);
    throw e;
  }
}

export function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

// What no page may show a person: null, undefined or NaN from a missing field; an id (a
// user's, a group's, an org's or an export's: u_…, g_…, o_…, x_…; a challenge's c_… is
// the QR step's typed fallback); a count of one with a plural noun ("1 members": i18n.js
// has a `.one` form for it); and on a Chinese page (lang, <html lang>) ASCII colons or
// semicolons after Chinese words, a space before 后 ("2 小时 后") or between two sentences.
export function checkPageText(name, text, lang = 'en') {
  check(!/\b(null|undefined|NaN)\b/.test(text), `${name}: the page shows null, undefined or NaN`);
  // Not inside an address: the QR step's fallback link carries a random nonce.
  const bare = text.replace(/https?:\/\/\S+/g, '');
  const id = bare.match(/(?<![\w-])[ugox]_[\w-]{8,}/);
  check(!id, `${name}: the page shows an id: ${id && bare.slice(Math.max(0, id.index - 80), id.index + 40)}`);
  const one = text.match(/(?<![\d.,])\b1 (members|messages|files|payments|admins|sessions|deliveries|bytes|groups|accounts)\b/);
  check(!one, `${name}: "${one?.[0]}", where one takes the singular`);
  if (!lang.startsWith('zh')) return;
  const punct = text.match(/[\u4e00-\u9fff][:;]|(天|小时|分钟|秒) 后|[。；！？] [\u4e00-\u9fff]/);
  check(!punct, `${name}: "${punct && text.slice(Math.max(0, punct.index - 20), punct.index + 10)}", Chinese takes ：；`);
}

// The source is evaluated rather than added as a <script>: the console's
// Content-Security-Policy rightly refuses inline scripts, and the tests keep it on.
export async function axeCheck(page, name) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE);
  await page.waitForFunction(() => document.getAnimations().every((a) => a.playState !== 'running'));
  const v = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] }))
    .violations.map((x) => `${x.impact} ${x.id}: ${x.help} — ${x.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`));
  run.axeRuns++;
  check(v.length === 0, `${name}: axe-core violations:\n  ${v.join('\n  ')}`);
}

export async function api(method, path, body, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = 'Bearer ' + token;
  const res = await fetch(URL + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.status === 204 ? null : res.json();
}

// A user made through the API, with a CLI session.
export async function apiUser(username) {
  await api('POST', '/v1/users', { username, password: PASSWORD });
  const s = await api('POST', '/v1/sessions', { username, password: PASSWORD, device_id: 'cli-' + username, platform: 'cli' });
  return { username, token: s.token, openid: s.openid };
}

// Runs in every page of a person before the console's scripts: counts the event streams
// being set up (a ticket asked for, then its EventSource until it opens or fails), so a
// test can wait for none to be under way (advanceClock).  A ticket granted but not used
// within 2 s (the console stopped following while it was asked for) stops counting.
function trackStreams() {
  const s = { pending: 0, connecting: 0 };
  const granted = []; // tickets not yet used by an EventSource
  const settle = (t) => { if (!t.done) { t.done = true; s.pending--; } };
  window.__qunStreams = s;
  const realFetch = window.fetch;
  window.fetch = function (input, init) {
    const p = realFetch.call(this, input, init);
    if (!String(typeof input === 'string' ? input : input.url).includes('/v1/events/ticket')) return p;
    const t = { done: false };
    s.pending++;
    p.then((r) => {
      if (!r.ok) return settle(t);
      granted.push(t);
      setTimeout(() => settle(t), 2000);
    }, () => settle(t));
    return p;
  };
  const Real = window.EventSource;
  if (!Real) return;
  window.EventSource = class extends Real {
    constructor(url, opts) {
      super(url, opts);
      let t;
      while ((t = granted.shift()) && t.done); // the oldest ticket still counting
      if (t) settle(t);
      s.connecting++;
      let ended = false;
      const end = () => { if (!ended) { ended = true; s.connecting--; } };
      this.addEventListener('open', end);
      this.addEventListener('error', end);
    }
  };
}

// A person in a browser context of their own; errors matching who.expect are allowed.
export async function person(browser, locale, username) {
  const context = await browser.newContext({ viewport: DESKTOP, locale });
  await context.addInitScript(trackStreams);
  const page = await context.newPage();
  const who = { context, page, username, expect: [] };
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (who.expect.some((re) => re.test(m.text()))) return;
    run.errors.push(`${username} console: ${m.text()}`);
  });
  page.on('pageerror', (e) => run.errors.push(`${username} page error: ${e.message}`));
  return who;
}

export function launch() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// The last step of a run, then its end: exit 1 after any failure or collected error.
export async function finish(browser, passed) {
  await browser.close();
  if (run.failures || run.errors.length) {
    if (run.errors.length) console.log(run.errors.join('\n'));
    process.exit(1);
  }
  console.log(passed);
}

// Move qund's test clock ahead (QUN_TEST_CLOCK), once no page of people is setting up an
// event stream: a ticket asked for before the jump would have expired when its stream
// opens after it, and the browser logs that 401.
export async function advanceClock(people, seconds) {
  for (const who of people)
    await who.page.waitForFunction(() => !window.__qunStreams ||
      (window.__qunStreams.pending === 0 && window.__qunStreams.connecting === 0), null, { timeout: 15000 });
  return (await api('POST', '/v1/test/clock', { advance: seconds })).now;
}

export async function noErrors() {
  await step('no console errors', async () => {
    check(run.errors.length === 0, `console errors:\n${run.errors.join('\n')}`);
  });
}
