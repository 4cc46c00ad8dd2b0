// SPDX-License-Identifier: MIT
// The web console in a real browser (Debian's Chromium through playwright-core),
// against the qund that run.sh started (QUN_URL, data directory QUN_DATA).
// Scenario, as named steps: two users register in the browser, the owner creates a
// group, adds the member by the openid the member's profile shows, both post; the
// owner previews the dissolution, cannot press the button with a wrong name, requests
// it with the right one and sees the countdown; the member sees the notice banner; the
// owner cancels (active again), dissolves again, the test clock jumps 48 h + 1 s and
// the page shows `dissolved`; the audit view verifies every entry, then shows `failed`
// for the one entry the test rewrites in the database.  Every step is photographed at
// desktop (1280x800) and phone (390x844) width into SHOTS.  Any console error or
// uncaught page error fails the run.

import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const URL = process.env.QUN_URL;
const DATA = process.env.QUN_DATA;
const SHOTS = process.env.SHOTS || 'build/screenshots';
if (!URL || !DATA) throw new Error('run through tests/browser/run.sh (QUN_URL and QUN_DATA)');
mkdirSync(SHOTS, { recursive: true });

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const GROUP = 'Book club 读书会';
const errors = [];
let shotNo = 0;
let failures = 0;

function log(...a) {
  console.log(...a);
}

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failures++;
    log(`FAIL ${name}: ${e.stack || e}`);
    throw e;
  }
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

// One screenshot at desktop width and one at phone width, then back to desktop.
async function shot(page, name) {
  const n = String(++shotNo).padStart(2, '0');
  const text = await page.evaluate(() => document.body.innerText);
  check(!/\b(null|undefined|NaN)\b/.test(text), `${name}: the page shows null, undefined or NaN`);
  await page.setViewportSize(DESKTOP);
  await page.screenshot({ path: join(SHOTS, `${n}-${name}-desktop.png`), fullPage: true });
  await page.setViewportSize(PHONE);
  await page.screenshot({ path: join(SHOTS, `${n}-${name}-phone.png`), fullPage: true });
  await page.setViewportSize(DESKTOP);
}

async function newUser(browser, locale) {
  const context = await browser.newContext({ viewport: DESKTOP, locale });
  const page = await context.newPage();
  const user = { context, page, goneExpected: false };
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (user.goneExpected && /status of 410 \(Gone\)/.test(m.text())) return;
    errors.push(`${locale} console: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => errors.push(`${locale} page error: ${e.message}`));
  return user;
}

async function api(method, path, body) {
  const res = await fetch(URL + path, {
    method, headers: { 'Content-Type': 'application/json' }, body: body ? JSON.stringify(body) : undefined,
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

async function register(page, username) {
  await page.goto(URL + '/');
  await page.waitForSelector('#register');
  await page.fill('input[name=new-username]', username);
  await page.fill('input[name=new-password]', 'correct horse battery');
  await page.click('#register');
  await page.waitForSelector('#my-openid');
  return (await page.textContent('#my-openid')).trim();
}

async function stateIs(page, state, timeout = 15000) {
  await page.waitForSelector(`#dissolution .badge[data-state="${state}"]`, { timeout });
}

async function requestDissolution(page) {
  await page.click('#dissolve-link');
  await page.waitForSelector('#preview-btn');
  await page.click('#preview-btn');
  await page.waitForSelector('#impact');
}

async function auditResults(page, rows) {
  await page.waitForFunction((n) => document.querySelectorAll('#audit [data-result]').length === n, rows, { timeout: 20000 });
  return page.$$eval('#audit tbody tr', (trs) => trs.map((tr) => ({
    index: Number(tr.dataset.index), result: tr.querySelector('[data-result]').dataset.result,
  })));
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
let gid = '';
try {
  const owner = await newUser(browser, 'en-US');
  const member = await newUser(browser, 'zh-CN'); // the member's browser asks for Chinese
  let memberOpenid = '';

  await step('sign-in page', async () => {
    await owner.page.goto(URL + '/');
    await owner.page.waitForSelector('#signin');
    await shot(owner.page, 'sign-in');
  });

  await step('two users register in the browser', async () => {
    await register(owner.page, 'ann');
    memberOpenid = await register(member.page, 'bob');
    check(/^u_/.test(memberOpenid), `openid ${memberOpenid}`);
    check((await member.page.getAttribute('html', 'lang')) === 'zh-Hans', 'the member\'s console follows navigator.language');
    await shot(member.page, 'profile-zh');
  });

  await step('the owner creates a group', async () => {
    await owner.page.click('a[href="#/groups"]');
    await owner.page.fill('input[name=group-name]', GROUP);
    await owner.page.click('#create-group');
    await owner.page.waitForSelector('#group-name');
    check((await owner.page.textContent('#group-name')) === GROUP, 'group name');
    gid = owner.page.url().split('#/g/')[1];
    check(/^g_/.test(gid), `group id ${gid}`);
  });

  await step('the owner adds the member by openid and both post', async () => {
    await owner.page.fill('input[name=member-openid]', memberOpenid);
    await owner.page.click('#add-member');
    await owner.page.waitForSelector('#members li:nth-child(2)');
    for (const text of ['Hello everyone', 'Meeting on Friday']) {
      await owner.page.fill('input[name=message]', text);
      await owner.page.click('#send');
      await owner.page.waitForSelector(`#messages li:has-text("${text}")`);
    }
    await member.page.goto(`${URL}/#/g/${gid}`);
    await member.page.waitForSelector('#messages li:has-text("Meeting on Friday")');
    await member.page.fill('input[name=message]', '好的，周五见');
    await member.page.click('#send');
    // The owner's page receives it through live.js (polling every 2 s today).
    await owner.page.waitForSelector('#messages li:has-text("周五见")', { timeout: 10000 });
    await shot(owner.page, 'group');
  });

  await step('the dissolve flow shows the impact preview', async () => {
    await requestDissolution(owner.page);
    const impact = await owner.page.textContent('#impact');
    check(impact.includes('Members') && impact.includes('personal bill lines are never purged'), 'impact rows and rules');
    const delay = await owner.page.textContent('#delay');
    check(delay.includes('2 d'), `delay: ${delay}`);
    check((await owner.page.textContent('#delay-reasons')).includes('cooling_off'), 'delay reason');
    check((await owner.page.textContent('#approvals-needed')).includes('No approvals'), 'approvals');
    check((await owner.page.textContent('#requirements')).includes('confirm'), 'requirements');
    await shot(owner.page, 'preview');
  });

  await step('a wrong name keeps the button disabled; the right one enables it', async () => {
    await owner.page.fill('#confirm-name', 'Book club');
    check(await owner.page.isDisabled('#dissolve-btn'), 'disabled on a wrong name');
    await owner.page.press('#confirm-name', 'Enter'); // Enter must not get around it either
    check(owner.page.url().endsWith('/dissolve'), 'still on the dissolve page');
    await shot(owner.page, 'wrong-name');
    await owner.page.fill('#confirm-name', GROUP);
    check(await owner.page.isEnabled('#dissolve-btn'), 'enabled on the exact name');
  });

  await step('the request shows the countdown', async () => {
    await owner.page.click('#dissolve-btn');
    await stateIs(owner.page, 'pending');
    const c = await owner.page.textContent('#countdown');
    check(/Dissolves in (2 d|1 d 23 h)/.test(c), `countdown: ${c}`);
    await owner.page.waitForSelector('#cancel-btn');
    await shot(owner.page, 'countdown');
  });

  await step('the member sees the notice banner while pending', async () => {
    await member.page.reload();
    await member.page.waitForSelector('#notice-banner', { timeout: 10000 });
    const b = await member.page.textContent('#notice-banner');
    check(b.includes('解散') && /(2 天|1 天 23 小时)/.test(b), `banner: ${b}`);
    await shot(member.page, 'member-banner-zh');
  });

  await step('cancel makes the group active again', async () => {
    await owner.page.click('#cancel-btn');
    await stateIs(owner.page, 'active');
    await member.page.waitForSelector('#notice-banner', { state: 'detached', timeout: 10000 });
    await shot(owner.page, 'cancelled');
  });

  await step('dissolve again and wait out the window with the test clock', async () => {
    await owner.page.goto(`${URL}/#/g/${gid}`);
    await requestDissolution(owner.page);
    await owner.page.fill('#confirm-name', GROUP);
    await owner.page.click('#dissolve-btn');
    await stateIs(owner.page, 'pending');
    member.goneExpected = true; // see below
    await api('POST', '/v1/test/clock', { advance: 48 * 3600 + 1 });
    await stateIs(owner.page, 'dissolved', 30000);
    await shot(owner.page, 'dissolved');
    // The member, still on the group's page, is told it is gone.  Its polls got 410
    // GROUP_GONE on the way, which Chromium logs as failed resources: expected here.
    await member.page.waitForSelector('#group-state .badge[data-state="dissolved"]', { timeout: 15000 });
    check((await member.page.textContent('#banner')).includes('已解散'), 'the member\'s banner says dissolved');
    await shot(member.page, 'member-dissolved-zh');
  });

  let rows = 0;
  await step('the audit view verifies every entry', async () => {
    await owner.page.goto(`${URL}/#/g/${gid}/audit`);
    await owner.page.waitForSelector('#audit tbody tr');
    rows = await owner.page.$$eval('#audit tbody tr', (trs) => trs.length);
    check(rows >= 5, `history rows: ${rows}`); // created, requested, cancelled?, requested, dissolved
    const results = await auditResults(owner.page, rows);
    check(results.every((r) => r.result === 'verified'), `results: ${JSON.stringify(results)}`);
    check((await owner.page.textContent('#checkpoint')).includes('signature verified'), 'checkpoint signature');
    await shot(owner.page, 'audit-verified');
  });

  await step('a rewritten entry shows failed', async () => {
    const first = await owner.page.$eval('#audit tbody tr', (tr) => Number(tr.dataset.index));
    const changed = execFileSync('sqlite3', ['-cmd', '.timeout 5000', join(DATA, 'qun.db'),
      `UPDATE ledger_entries SET entry = replace(entry, '"kind":"standard"', '"kind":"finance"') WHERE idx = ${first}; SELECT changes();`]);
    check(String(changed).trim() === '1', `rows rewritten: ${changed}`);
    await owner.page.click('#reverify');
    await owner.page.waitForSelector('#audit [data-result="failed"]', { timeout: 20000 });
    const results = await auditResults(owner.page, rows);
    for (const r of results) {
      check(r.result === (r.index === first ? 'failed' : 'verified'), `after tampering with ${first}: ${JSON.stringify(results)}`);
    }
    await shot(owner.page, 'audit-failed');
  });

  await step('no console errors', async () => {
    check(errors.length === 0, `console errors:\n${errors.join('\n')}`);
  });
} catch {
  // reported by step()
} finally {
  await browser.close();
}
if (failures || errors.length) {
  if (errors.length) log(errors.join('\n'));
  process.exit(1);
}
log(`browser tests passed; ${shotNo * 2} screenshots`);
