// SPDX-License-Identifier: MIT
// qund servers a browser test starts itself, beside run.sh's: each on a free loopback
// port with a temporary data directory, the test clock on and the repository's web/ as
// web_root, reached at http://localhost:PORT (the origin passkeys are bound to).
// stopServers ends them all (TERM, then KILL after 5 s), removes their data and reports
// any sanitizer line in their output as an error.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '../..');
const servers = [];

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// settings(url): the test's own --set arguments, given the server's URL.
export async function startServer(name, settings = () => []) {
  if (!process.env.QUND) throw new Error('run through tests/browser/run.sh (QUND)');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), `qun-${name}.`));
  const url = `http://localhost:${port}`;
  const child = spawn(process.env.QUND, ['--listen', `127.0.0.1:${port}`, '--data', join(dir, 'data'),
    '--set', `web_root=${join(REPO, 'web')}`, ...settings(url)],
  { env: { ...process.env, QUN_TEST_CLOCK: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const srv = { url, child, dir, log: () => out };
  servers.push(srv);
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) break;
    } catch { /* not yet */ }
    if (i > 100 || child.exitCode !== null) throw new Error(`qund did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return srv;
}

// errors: the array a sanitizer report is added to.
export async function stopServers(errors) {
  for (const s of servers.splice(0)) {
    if (s.child.exitCode === null) {
      const exited = new Promise((r) => s.child.once('exit', r));
      s.child.kill('SIGTERM');
      const timer = setTimeout(() => s.child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    if (/ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/.test(s.log())) {
      errors.push(`qund ${s.url}: sanitizer report:\n${s.log().slice(-3000)}`);
    }
    rmSync(s.dir, { recursive: true, force: true });
  }
}
