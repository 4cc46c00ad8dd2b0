// SPDX-License-Identifier: MIT
// Notifications in the console, in Debian's Chromium against the qund run.sh started,
// whose mail goes to an aiosmtpd on loopback saving into QUN_MAILDIR.  Steps: a member
// adds a mail address on the mail settings page and types back the code the mail
// brought (a wrong one first: a clear refusal); an invitation arrives while the member
// looks at another page and the navigation's unread badge counts it live; the inbox
// shows it by the group's and the inviter's names, in English and, for a Chinese
// member, in Chinese at phone width; a dissolution's notice arrives live too and by
// mail; "mark all as read" clears the badge; a guardian with no account opens the link
// of an invitation mail, is asked to sign up, comes back to it after signing up and
// accepts it, landing on the approval waiting for them.  Every step is photographed at
// desktop and phone width and passes axe-core.

import { readdirSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  DESKTOP, PASSWORD, PHONE, URL, api, apiUser, axeCheck, check, checkPageText, finish, launch, noErrors, person, run,
  step,
} from './harness.mjs';

const MAILDIR = process.env.QUN_MAILDIR;
const SHOTS = process.env.SHOTS || 'build/screenshots';
if (!URL || !MAILDIR) throw new Error('run through tests/browser/run.sh (QUN_URL and QUN_MAILDIR)');
mkdirSync(SHOTS, { recursive: true });
let shots = 0;

async function shot(page, name) {
  const n = String(++shots).padStart(2, '0');
  checkPageText(name, await page.evaluate(() => document.body.innerText), await page.evaluate(() => document.documentElement.lang));
  for (const [w, size] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await page.setViewportSize(size);
    await axeCheck(page, `${name} (${w})`);
    await page.screenshot({ path: join(SHOTS, `n${n}-${name}-${w}.png`), fullPage: true });
  }
  await page.setViewportSize(DESKTOP);
}

// ---- mail, as aiosmtpd's Maildir holds it ----

function mails() {
  const dir = join(MAILDIR, 'new');
  let names = [];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.map((f) => {
    const raw = readFileSync(join(dir, f), 'utf8');
    const [head, ...rest] = raw.split(/\r?\n\r?\n/);
    const header = (k) => (new RegExp(`^${k}: (.*)$`, 'mi').exec(head) || [])[1] || '';
    return { to: header('To'), kind: header('X-Qun-Kind'), body: Buffer.from(rest.join('').replace(/\s+/g, ''), 'base64').toString('utf8') };
  });
}

async function waitMail(address, kind, timeout = 15000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const m = mails().filter((x) => x.to.includes(address) && x.kind === kind);
    if (m.length) return m[m.length - 1];
    check(Date.now() < deadline, `no ${kind} mail to ${address}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---- people in the browser ----

async function signUp(page, username, waitFor = '#my-username') {
  await page.waitForSelector('#register');
  await page.fill('input[name=new-username]', username);
  await page.fill('input[name=new-password]', PASSWORD);
  await page.fill('input[name=new-password-again]', PASSWORD);
  await page.click('#register');
  await page.waitForSelector(waitFor);
}

const unreadBadge = (page) => page.evaluate(() => {
  const b = document.querySelector('#nav-inbox .badge');
  return b ? b.textContent : '';
});

const browser = await launch();
const stamp = Date.now().toString(36).slice(-5);
try {
  const owner = await apiUser('nora' + stamp);
  const ann = await person(browser, 'en-US', 'ann' + stamp);
  const li = await person(browser, 'zh-CN', 'li' + stamp);
  const annMail = `ann${stamp}@example.test`;

  await step('a member adds a mail address and types back the code', async () => {
    await ann.page.goto(URL + '/');
    await signUp(ann.page, ann.username);
    await ann.page.goto(URL + '/#/me/email');
    await ann.page.waitForSelector('#mail-address');
    await shot(ann.page, 'mail-settings');
    await ann.page.fill('input[name=address]', annMail);
    await ann.page.click('#mail-address button[type=submit]');
    await ann.page.waitForSelector('#mail-verify');
    const code = /\b(\d{8})\b/.exec((await waitMail(annMail, 'email.verify')).body)[1];
    ann.expect.push(/status of 422/);
    await ann.page.fill('input[name=code]', code === '00000000' ? '11111111' : '00000000');
    await ann.page.click('#mail-verify button[type=submit]');
    await ann.page.waitForSelector('#mail-verify .error[data-code="EMAIL_CODE_INVALID"]'); // under its own button
    await shot(ann.page, 'mail-code-wrong');
    await ann.page.fill('input[name=code]', code);
    await ann.page.click('#mail-verify button[type=submit]');
    await ann.page.waitForFunction(() => !document.getElementById('mail-verify'));
    check((await ann.page.textContent('#mail-state')).includes('(verified)'), 'the address shows verified');
    check(await ann.page.inputValue('#mail-address input[name=address]') === '', 'a verified address is not offered as "another address"');
    await shot(ann.page, 'mail-verified');
  });

  let gid = '';
  await step('an invitation arrives live in the badge and the inbox names it', async () => {
    ann.openid = (await api('GET', '/v1/me', undefined, await ann.page.evaluate(() => sessionStorage.getItem('qun.token')))).openid;
    await ann.page.goto(URL + '/#/groups');
    await ann.page.waitForSelector('#nav-inbox');
    gid = (await api('POST', '/v1/groups', { name: 'Book club 读书会' }, owner.token)).id;
    await api('POST', `/v1/groups/${gid}/members`, { openid: ann.openid }, owner.token);
    const other = (await api('POST', '/v1/groups', { name: 'Chess 象棋' }, owner.token)).id;
    await api('POST', `/v1/groups/${other}/invitations`, { username: ann.username }, owner.token);
    await ann.page.waitForFunction(() => document.querySelector('#nav-inbox .badge')?.textContent === '1', null, { timeout: 5000 });
    await ann.page.click('#nav-inbox');
    await ann.page.waitForSelector('#inbox .note[data-kind="invitation.received"]');
    const text = await ann.page.textContent('#inbox');
    check(text.includes('Chess 象棋') && text.includes(owner.username), `the inbox names the group and the inviter: ${text}`);
    await shot(ann.page, 'inbox');
  });

  await step('a dissolution notice arrives live and by mail', async () => {
    const p = await api('POST', `/v1/groups/${gid}/dissolution/preview`, { messages: 'keep' }, owner.token);
    await api('POST', `/v1/groups/${gid}/dissolution`, { messages: 'keep', confirmation_token: p.confirmation_token, typed_name: p.name }, owner.token);
    await ann.page.waitForSelector('#inbox .note[data-kind="dissolution.pending"]', { timeout: 5000 });
    check(await unreadBadge(ann.page) === '2', 'two unread');
    const m = await waitMail(annMail, 'dissolution.pending');
    check(m.body.includes('Book club 读书会') && m.body.includes(owner.username), 'the mail names the group and the owner');
    await shot(ann.page, 'inbox-notice');
    await ann.page.click('#inbox-read');
    // The badge clears with the answer; the list is drawn again from the server just after.
    await ann.page.waitForFunction(() => document.querySelector('#nav-inbox .badge')?.textContent === '');
    await ann.page.waitForFunction(() => document.querySelectorAll('#inbox .note').length > 0
      && !document.querySelector('#inbox .note[data-read="0"]'), null, { timeout: 5000 });
    check((await ann.page.locator('#inbox .note[data-read="1"]').count()) === 2, 'both notices show as read');
  });

  await step('a Chinese member reads the inbox in Chinese at phone width', async () => {
    await li.page.goto(URL + '/');
    await li.page.setViewportSize(PHONE);
    await signUp(li.page, li.username);
    const g2 = (await api('POST', '/v1/groups', { name: '家长群' }, owner.token)).id;
    await api('POST', `/v1/groups/${g2}/invitations`, { username: li.username }, owner.token);
    await li.page.goto(URL + '/#/inbox');
    await li.page.waitForSelector('#inbox .note[data-kind="invitation.received"]');
    const text = await li.page.textContent('#inbox');
    check(text.includes('邀请你以成员身份加入「家长群」'), `Chinese words: ${text}`);
    await shot(li.page, 'inbox-zh');
  });

  await step('a guardian with no account follows the invitation mail and lands on the approval', async () => {
    const school = (await api('POST', '/v1/orgs', { name: 'Riverside School', kind: 'school' }, owner.token)).id;
    const kid = await apiUser('kid' + stamp);
    const teacher = await apiUser('tina' + stamp);
    await api('POST', `/v1/orgs/${school}/admins`, { openid: teacher.openid }, owner.token);
    await api('POST', `/v1/orgs/${school}/guardians`, { minor: kid.openid, guardian: owner.openid }, owner.token);
    const cls = (await api('POST', '/v1/groups', { name: 'class 3b', kind: 'education', org: school }, teacher.token)).id;
    await api('POST', `/v1/groups/${cls}/members`, { openid: kid.openid }, teacher.token);
    const p = await api('POST', `/v1/groups/${cls}/dissolution/preview`, { messages: 'delete' }, teacher.token);
    await api('POST', `/v1/groups/${cls}/dissolution`, {
      messages: 'delete', confirmation_token: p.confirmation_token, typed_name: p.name, password: PASSWORD,
    }, teacher.token);
    const mum = `mum${stamp}@example.test`;
    await api('POST', `/v1/orgs/${school}/email-invites`, { address: mum, role: 'guardian', minor: kid.openid }, owner.token);
    const link = /(http\S*#\/invite\/qei_[0-9a-f]{64})/.exec((await waitMail(mum, 'email.invite')).body)[1];
    const mother = await person(browser, 'en-US', 'mum' + stamp);
    await mother.page.goto(URL + '/' + link.slice(link.indexOf('#')));
    await mother.page.waitForSelector('#view a.button[href="#/login"]');
    await shot(mother.page, 'invite-signin');
    await mother.page.click('#view a.button[href="#/login"]');
    await signUp(mother.page, mother.username, '#invite-accept');
    await mother.page.click('#invite-accept');
    await mother.page.waitForSelector('#invite-result a[href="#/approvals"]');
    check((await mother.page.textContent('#invite-result')).includes('guardian of kid' + stamp), 'names the child');
    await shot(mother.page, 'invite-accepted');
    await mother.page.click('#invite-result a[href="#/approvals"]');
    await mother.page.waitForSelector('#approvals li.approval');
    check((await mother.page.textContent('#approvals')).includes('class 3b'), 'the approval names the group');
  });

  await noErrors();
} catch {
  // reported by step()
}
await finish(browser, `notification browser tests passed; ${shots * 2} screenshots with axe-core at both widths`);
