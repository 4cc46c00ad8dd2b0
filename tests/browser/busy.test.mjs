// SPDX-License-Identifier: MIT
// A server briefly full, as on a crowded morning.  qund answers a password check 503
// UNAVAILABLE with Retry-After: 1 when `argon2_queue` others already wait, before doing
// any of its work (docs/architecture.md, "Threads"); the console sends the sign-in again
// after the pause instead of telling the person the server is busy (web/js/api.js).
// Against a qund of its own (servers.mjs) with one loop, so one password thread, a queue
// of one, and a password cost that makes a check take a few tenths of a second:
// two sign-ins through the API take the thread and the queue, then a parent signs in on a
// phone, in Chinese, and lands on her groups with no error shown.

import { check, finish, launch, PASSWORD, person, PHONE, run, step } from './harness.mjs';
import { startServer, stopServers } from './servers.mjs';

// A check costs 3 passes over 256 MiB: about 0.4 s here, long enough for the console's
// attempt to land while one check runs and one waits, and short enough that the waiting
// one has started before the console's third retry (3 s) even on two loaded cores.
const srv = await startServer('busy', () => ['--threads', '1', '--set', 'argon2_queue=1',
  '--set', 'argon2_opslimit=3', '--set', 'argon2_memlimit_kib=262144']);

async function post(path, body) {
  const res = await fetch(srv.url + path, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

async function metric(name) {
  const m = (await (await fetch(srv.url + '/metrics')).text()).match(new RegExp(`^${name} (\\d+)$`, 'm'));
  check(m, `/metrics has ${name}`);
  return Number(m[1]);
}

const browser = await launch();
try {
  await step('a sign-in refused while the password threads are full is sent again, and goes through', async () => {
    check((await post('/v1/users', { username: 'mei', password: PASSWORD })).status === 201, 'mei has an account');
    const who = await person(browser, 'zh-CN', 'mei');
    who.expect.push(/status of 503/); // Chromium logs each refused attempt
    const { page } = who;
    await page.setViewportSize(PHONE);
    await page.goto(srv.url + '/');
    await page.waitForSelector('#signin');
    await page.fill('input[name=username]', 'mei');
    await page.fill('input[name=password]', PASSWORD);
    const refused = await metric('qun_password_checks_refused_total');
    // Two of mei's other devices sign in: one check runs, one waits, and the queue is full.
    // The second is sent until it waits: sent before the thread took the first, it finds
    // the queue full itself and is refused at once (then sent again).
    const signIn = (i) => post('/v1/sessions', { username: 'mei', password: PASSWORD, device_id: `tablet-${i}`,
      platform: 'android' });
    const others = [signIn(1)];
    for (let tries = 0; ; tries++) {
      check(tries < 20, 'the second sign-in comes to wait for the password thread');
      let settled = null;
      const second = signIn(2).then((o) => { settled = o; return o; });
      for (let i = 0; !settled && (await metric('qun_password_checks_waiting')) < 1; i++) {
        check(i < 250, 'the second sign-in is answered or waits');
        await new Promise((r) => setTimeout(r, 20));
      }
      if (!settled) {
        others.push(second);
        break;
      }
      check(settled.status === 503, `a sign-in sent too early is refused, not lost (${settled.status})`);
    }
    await page.click('#signin');
    await page.waitForSelector('#create-title', { timeout: 30000 });
    check(await page.evaluate(() => sessionStorage.getItem('qun.token')), 'the console holds a session');
    check(!(await page.$('.error')), 'no error is shown');
    check(await metric('qun_password_checks_refused_total') > refused,
      "the console's first sign-in was refused 503 while the queue was full, and sent again");
    for (const o of await Promise.all(others)) check(o.status === 201, `the waiting sign-ins went through (${o.status})`);
    await who.context.close(); // its event stream, before the server stops
  });
} finally {
  await stopServers(run.errors);
}
await finish(browser, 'busy: a full password queue is waited out');
