// SPDX-License-Identifier: MIT
// The console's other destructive actions (issue 16), in Debian's Chromium against the
// qund run.sh started (test clock on; QUN the qun CLI, acting as the owners' phones).
// Each flow completes at least one verification step of proofs.js in the browser:
//   bulk removal  the owner (Chinese) ticks 11 members by name, reads the preview's
//                 impact (more than 10 in 24 h: verification), and the web platform's QR
//                 step is approved by the phone; the members are gone;
//   transfer      the owner (English) picks the heir by name, reads the preview, the QR
//                 step is approved by the phone, the offer shows as pending and is
//                 withdrawn; offered again, the heir (Chinese) finds it in the inbox,
//                 follows its link and accepts: the heir is the owner;
//   restore       the owner of a dissolved group presses Restore and the 428's password
//                 step appears; the password restores it;
//   approval      a protected enterprise group's dissolution preview names its approver
//                 from the server's from_code (the org's name, in Chinese), the org admin
//                 (Chinese) sees the approval by names and translated words, and an
//                 approval that answers 428 (the answer is stubbed: the server asks no
//                 proof of approvers today) gets its password step and goes again.
// Every step is photographed at desktop and phone width and passes axe-core; a page
// showing null/undefined/NaN, a console error or an uncaught page error fails.

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  DESKTOP, PASSWORD, PHONE, URL, advanceClock, api, apiUser, axeCheck, check, checkPageText, finish, launch, noErrors,
  person, run, step,
} from './harness.mjs';

const SHOTS = process.env.SHOTS || 'build/screenshots';
const QUN = process.env.QUN || '';
if (!URL || !QUN) throw new Error('run through tests/browser/run.sh (QUN_URL and QUN)');
mkdirSync(SHOTS, { recursive: true });
let shots = 0;

// Desktop and phone width, axe-core at both; a Chinese page must not show English
// sentences of the server, keys or openids.
async function shot(page, name) {
  const n = String(++shots).padStart(2, '0');
  const text = await page.evaluate(() => document.getElementById('view').innerText);
  checkPageText(name, text, await page.evaluate(() => document.documentElement.lang));
  if (await page.evaluate(() => document.documentElement.lang.startsWith('zh'))) {
    check(!/\b(any admin|the org|approval:|org_admin|school_admin|requested by)\b/i.test(text), `${name}: English on a Chinese page: ${text}`);
  }
  for (const [w, size] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await page.setViewportSize(size);
    await axeCheck(page, `${name} (${w})`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    check(overflow <= 1, `${name} (${w}): the page scrolls sideways by ${overflow} px`);
    await page.screenshot({ path: join(SHOTS, `t${n}-${name}-${w}.png`), fullPage: true });
  }
  await page.setViewportSize(DESKTOP);
}

// A phone of username: a session on platform ios with a device key, driven by the qun CLI.
async function phoneOf(username) {
  const s = await api('POST', '/v1/sessions', { username, password: PASSWORD, device_id: 'phone-' + username, platform: 'ios' });
  const keyFile = join(mkdtempSync(join(tmpdir(), 'qun-phone-')), 'phone.key');
  const run = (...args) => execFileSync(QUN, ['--url', URL, ...args], {
    env: { ...process.env, QUN_TOKEN: s.token, XDG_CONFIG_HOME: dirname(keyFile) }, encoding: 'utf8', stdio: 'pipe',
  });
  run('device', 'key', 'register', '--key', keyFile);
  // Approve the QR code the page shows, as the phone that scanned it.
  return async (page) => {
    await page.waitForSelector('#qr img');
    const link = (await page.textContent('#qr-link')).trim();
    check(/^https?:\/\/[^/]+\/app\/approve\?c=[\w-]+&n=[\w-]+$/.test(link), `QR link ${link}`);
    run('approve', link, '--key', keyFile);
  };
}

async function signIn(page, username) {
  await page.goto(URL + '/#/login');
  await page.waitForSelector('#signin');
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', PASSWORD);
  await page.click('#signin');
  await page.waitForFunction(() => sessionStorage.getItem('qun.token'));
}

async function open(page, hash, selector) {
  await page.goto(`${URL}/${hash}`);
  await page.waitForSelector(selector);
  await page.waitForFunction(() => !document.getElementById('view').hasAttribute('aria-busy'));
}

const browser = await launch();
try {
  // People: made through the API first (their CLI devices are the oldest), then the
  // browsers sign in, then the phones; the clock then moves 7 days and a second, so
  // that no device is new (risk) and the sessions are old enough to transfer.
  const olga = await apiUser('olga16');
  const hugo = await apiUser('hugo16');
  const boss = await apiUser('boss16');
  const rita = await apiUser('rita16'); // no phone: her CLI dissolves with the token and the name
  const crowd = [];
  for (let i = 1; i <= 11; i++) crowd.push(await apiUser(`m16_${String(i).padStart(2, '0')}`));
  await api('PATCH', '/v1/me', { display_name: '胡戈' }, hugo.token);
  const g = await api('POST', '/v1/groups', { name: 'Choir 合唱团', kind: 'standard' }, olga.token);
  for (const m of [hugo, ...crowd]) await api('POST', `/v1/groups/${g.id}/members`, { openid: m.openid }, olga.token);

  const owner = await person(browser, 'zh-CN', 'olga16');
  const heir = await person(browser, 'zh-CN', 'hugo16');
  const admin = await person(browser, 'zh-CN', 'boss16');
  const keeper = await person(browser, 'zh-CN', 'rita16');
  await signIn(owner.page, 'olga16');
  await signIn(heir.page, 'hugo16');
  await signIn(admin.page, 'boss16');
  await signIn(keeper.page, 'rita16');
  const olgaPhone = await phoneOf('olga16');
  await advanceClock([owner, heir, admin, keeper], 7 * 86400 + 1);

  await step('bulk removal: 11 members by name, the impact, the QR step, removed (Chinese)', async () => {
    const page = owner.page;
    await open(page, `#/g/${g.id}`, '#remove-link');
    await page.click('#remove-link');
    await page.waitForSelector('#remove-members');
    check(await page.isDisabled('#remove-preview'), 'nothing ticked: the preview button waits');
    check(await page.isVisible('#remove-pick-why'), 'and says why');
    const labels = await page.textContent('#remove-members');
    check(labels.includes('m16_01') && labels.includes('胡戈（hugo16）') && labels.includes('成员'), `members by name: ${labels}`);
    await shot(page, 'remove-pick-zh');
    for (const m of crowd) await page.check(`#remove-members input[value="${m.openid}"]`);
    await page.fill('#remove-reason', '合唱季结束');
    await page.click('#remove-preview');
    await page.waitForSelector('#remove-preview-card');
    const impact = await page.textContent('#remove-impact');
    check(impact.includes('将移除 11 位成员') && impact.includes('剩下 2 位'), `impact: ${impact}`);
    check((await page.textContent('#remove-requirements')).includes('二维码'), 'the web platform asks for a QR approval');
    await shot(page, 'remove-preview-zh');
    await page.click('#remove-go');
    await page.waitForSelector('#qr img');
    check(await page.isVisible('#remove-go-why'), 'the waiting button says why');
    await shot(page, 'remove-qr-zh');
    await olgaPhone(page);
    await page.waitForSelector('#remove-members');
    await page.waitForFunction(() => document.querySelectorAll('#remove-members input').length === 1);
    const left = await api('GET', `/v1/groups/${g.id}/members?limit=200`, undefined, olga.token);
    check(left.items.length === 2, `two members left: ${left.items.map((m) => m.username)}`);
    await shot(page, 'remove-done-zh');
  });

  await step('transfer: the owner previews, completes the QR step, the offer is pending, then withdrawn (English)', async () => {
    const page = owner.page;
    await page.selectOption('#lang', 'en');
    await open(page, `#/g/${g.id}/transfer`, '#transfer-to');
    check(await page.isDisabled('#transfer-preview') && await page.isVisible('#transfer-pick-why'), 'the preview button waits for a choice and says so');
    await page.selectOption('#transfer-to', hugo.openid);
    await page.click('#transfer-preview');
    await page.waitForSelector('#transfer-preview-card');
    const line = await page.textContent('#transfer-line');
    check(line.includes('胡戈') && line.includes('Choir 合唱团'), `preview names the heir and the group: ${line}`);
    check((await page.textContent('#transfer-requirements')).toLowerCase().includes('qr'), 'QR needed on the web');
    await shot(page, 'transfer-preview-en');
    await page.click('#transfer-go');
    await page.waitForSelector('#qr img');
    await shot(page, 'transfer-qr-en');
    await olgaPhone(page);
    await page.waitForSelector('#transfer-pending', { timeout: 15000 });
    check((await page.textContent('#transfer-pending')).includes('胡戈'), 'pending offer by name');
    await shot(page, 'transfer-pending-en');
    await page.click('#transfer-withdraw');
    await page.waitForSelector('#transfer-to');
    check(!(await api('GET', `/v1/groups/${g.id}`, undefined, olga.token)).transfer, 'no open offer');
    await shot(page, 'transfer-withdrawn-en');
  });

  await step('transfer: offered again in Chinese; the heir follows the inbox link and accepts', async () => {
    const page = owner.page;
    await page.selectOption('#lang', 'zh');
    await open(page, `#/g/${g.id}/transfer`, '#transfer-to');
    await page.selectOption('#transfer-to', hugo.openid);
    await page.click('#transfer-preview');
    await page.waitForSelector('#transfer-preview-card');
    await shot(page, 'transfer-preview-zh');
    await page.click('#transfer-go');
    await page.waitForSelector('#qr img');
    await shot(page, 'transfer-qr-zh');
    await olgaPhone(page);
    await page.waitForSelector('#transfer-pending', { timeout: 15000 });
    await shot(page, 'transfer-pending-zh');

    const hp = heir.page;
    await open(hp, '#/inbox', '#inbox');
    await hp.waitForSelector(`a[href="#/g/${g.id}/transfer"]`, { timeout: 15000 });
    await shot(hp, 'inbox-transfer-zh');
    await hp.click(`a[href="#/g/${g.id}/transfer"]`);
    await hp.waitForSelector('#transfer-offer');
    const offer = await hp.textContent('#transfer-offer-line');
    check(offer.includes('olga16') && offer.includes('Choir 合唱团') && offer.includes('转让给你'), `the offer in Chinese: ${offer}`);
    await shot(hp, 'transfer-offer-zh');
    await hp.click('#transfer-accept');
    await hp.waitForSelector('#group-name');
    const after = await api('GET', `/v1/groups/${g.id}`, undefined, hugo.token);
    check(after.owner === hugo.openid && after.my_role === 'owner', 'the heir is the owner');
    await open(hp, `#/g/${g.id}`, '#transfer-link');
    await shot(hp, 'transfer-accepted-zh');
  });

  await step('restore: the owner of a dissolved group completes the password step (English and Chinese)', async () => {
    const r = await api('POST', '/v1/groups', { name: 'Garden 花园', kind: 'standard' }, rita.token);
    const p = await api('POST', `/v1/groups/${r.id}/dissolution/preview`, { messages: 'keep' }, rita.token);
    await api('POST', `/v1/groups/${r.id}/dissolution`, { messages: 'keep', confirmation_token: p.confirmation_token, typed_name: p.name }, rita.token);
    await advanceClock([owner, heir, admin, keeper], 48 * 3600 + 1);
    const deadline = Date.now() + 15000;
    while ((await api('GET', `/v1/groups/${r.id}/dissolution`, undefined, rita.token)).state !== 'dissolved') {
      check(Date.now() < deadline, 'the group was dissolved');
      await new Promise((res) => setTimeout(res, 200));
    }
    const page = keeper.page;
    keeper.expect.push(/status of 428/, /status of 410/);
    await open(page, `#/g/${r.id}`, '#restore-btn');
    await page.click('#restore-btn');
    await page.waitForSelector('#step-password-input');
    check(await page.isDisabled('#step-password-go') && await page.isVisible('#step-password-go-why'), 'the empty password keeps Continue disabled and says why');
    check((await page.textContent('#restore')).includes('密码'), 'the step in Chinese');
    check((await page.textContent('#messages')).includes('此群已被 rita16 解散'), 'the notice names who dissolved it (by_name), not an openid');
    await shot(page, 'restore-password-zh');
    await page.selectOption('#lang', 'en');
    await page.waitForSelector('#restore-btn');
    await page.click('#restore-btn');
    await page.waitForSelector('#step-password-input');
    await page.fill('#step-password-input', PASSWORD);
    await shot(page, 'restore-password-en');
    await page.click('#step-password-go');
    await page.waitForSelector('#group-state .badge[data-state="active"]', { timeout: 15000 });
    check(await page.locator('#restore').count() === 0, 'the restore card is gone');
    await shot(page, 'restored-en');
  });

  await step('approval: the preview names the approver from from_code; the org admin approves through a password step', async () => {
    const org = await api('POST', '/v1/orgs', { name: 'Acme 艾克米', kind: 'enterprise' }, boss.token);
    await api('POST', `/v1/orgs/${org.id}/admins`, { openid: rita.openid }, boss.token);
    const e = await api('POST', '/v1/groups', { name: 'Team 团队', kind: 'enterprise', org: org.id }, rita.token);
    const page = keeper.page;
    await page.selectOption('#lang', 'zh');
    await open(page, `#/g/${e.id}/dissolve`, '#preview-btn');
    await page.click('#preview-btn');
    await page.waitForSelector('#approvals-needed');
    const who = await page.textContent('#approvals-needed');
    check(who.includes('“Acme 艾克米”的任意一位管理员'), `the approver from from_code, in Chinese: ${who}`);
    await shot(page, 'approval-preview-zh');
    await page.selectOption('#lang', 'en');
    await page.waitForSelector('#preview-btn');
    await page.click('#preview-btn');
    await page.waitForSelector('#approvals-needed');
    check((await page.textContent('#approvals-needed')).includes('any admin of Acme 艾克米'), 'and in English');
    const p = await api('POST', `/v1/groups/${e.id}/dissolution/preview`, { messages: 'keep' }, rita.token);
    const st = await api('POST', `/v1/groups/${e.id}/dissolution`, { messages: 'keep', confirmation_token: p.confirmation_token, typed_name: p.name }, rita.token);
    check(st.state === 'review', `waits for the org admin: ${st.state}`);

    const ap = admin.page;
    admin.expect.push(/status of 428/);
    // The server asks approvers no proof today: the first answer is made a 428 naming the
    // password, to show the console completes it and sends the decision again with it.
    let asked = 0;
    let carried = null;
    await ap.route('**/v1/approvals/*/approve', async (route) => {
      const body = JSON.parse(route.request().postData() || '{}');
      if (asked++ === 0) {
        await route.fulfill({ status: 428, contentType: 'application/problem+json',
          body: JSON.stringify({ type: 'about:blank', title: 'step-up required', status: 428, code: 'STEP_UP_REQUIRED', requirements: [{ method: 'password' }] }) });
        return;
      }
      carried = body.password;
      delete body.password;
      await route.continue({ postData: JSON.stringify(body) });
    });
    await open(ap, '#/approvals', '#approvals');
    const item = await ap.textContent('#approvals li');
    check(item.includes('解散“Team 团队”（企业）') && item.includes('申请人：rita16') && item.includes('“Acme 艾克米”的管理员'), `the approval by names, in Chinese: ${item}`);
    check(/涉及 \d+ 名成员、\d+ 条消息、0 个文件（0 字节）和 0 笔收付款。/.test(item) && item.includes('消息将只读保留'), `the figures it affects, in Chinese: ${item}`);
    await shot(ap, 'approval-item-zh');
    await ap.click('#approvals li button.approve');
    await ap.waitForSelector('#step-password-input');
    await shot(ap, 'approval-password-zh');
    await ap.fill('#step-password-input', PASSWORD);
    await ap.click('#step-password-go');
    await ap.waitForSelector('p#approvals');
    check(asked === 2 && carried === PASSWORD, `the decision went again with the password (${asked}, ${carried})`);
    const done = await api('GET', `/v1/groups/${e.id}/dissolution`, undefined, rita.token);
    check(done.approvals[0].state === 'approved', `approved: ${done.approvals[0].state}`);
    await shot(ap, 'approval-done-zh');
  });

  await noErrors();
} catch {
  // reported by step()
}
await finish(browser, `console16 browser tests passed; ${shots * 2} screenshots, ${run.axeRuns} axe-core checks without a violation`);
