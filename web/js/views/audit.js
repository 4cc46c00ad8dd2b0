// SPDX-License-Identifier: MIT
// The audit view: the group's ledger history, each entry verified in the browser.
// For each entry: leaf = SHA-256(0x00 || entry text) computed here, its inclusion
// proof fetched for the checkpoint's tree size and checked against the checkpoint's
// root, and the checkpoint itself accepted only if its Ed25519 signature verifies with
// the ledger key.  The key is pinned in localStorage on first use (trust on first
// use): fetching it from the server it checks proves little, so a change is shown.

import { api, enc } from '../api.js';
import { t, when } from '../i18n.js';
import { errorBox, h } from '../ui.js';
import { hexToBytes, leafHash, openCheckpoint, parseVerifierKey, verifyInclusion } from '../ledger.js';

function mark(ok) {
  return h('span', { class: ok ? 'mark ok' : 'mark bad', 'data-result': ok ? 'verified' : 'failed' },
    ok ? `✔ ${t('audit.verified')}` : `✘ ${t('audit.failed')}`);
}

// A failed check, said in the reader's language; `code` picks the sentence.
class Refusal extends Error {
  constructor(code) {
    super(code);
    this.code = code;
  }
}

// An event's name as people say it ("Group dissolved"), its code when qun has no words for it.
function eventLabel(ev) {
  const key = `audit.ev.${ev}`;
  const s = t(key);
  return s === key ? ev : s;
}

async function verifyAll(gid, rows, head) {
  const history = rows.history;
  const keyInfo = await api.get('/v1/ledger/key');
  const pinKey = `qun.ledger-key.${location.host}`;
  const pinned = localStorage.getItem(pinKey);
  if (!pinned) localStorage.setItem(pinKey, keyInfo.verifier_key);
  const notes = [];
  if (pinned && pinned !== keyInfo.verifier_key) notes.push(h('p', { class: 'error', role: 'alert' }, t('audit.key_changed', { key: pinned })));
  let cp = null;
  try {
    const key = await parseVerifierKey(keyInfo.verifier_key);
    cp = await openCheckpoint(await api.get('/v1/ledger/checkpoint', { text: true }), key);
    notes.push(h('p', { class: 'ok', id: 'checkpoint' }, t('audit.sig_ok'), ' ', t('audit.checkpoint', { size: cp.size, origin: cp.origin })));
  } catch (e) {
    const why = e.name === 'NotSupportedError' ? t('audit.no_webcrypto') : t('audit.why.sig');
    notes.push(h('p', { class: 'error', role: 'alert', id: 'checkpoint' }, t('audit.sig_bad', { why })));
  }
  head.replaceChildren(...notes);
  let verified = 0;
  let failed = 0;
  for (const item of history) {
    const cell = rows.cells.get(item.index);
    let ok = false;
    let why = '';
    try {
      if (!cp) throw new Refusal('no_checkpoint');
      if (typeof item.entry !== 'string') throw new Refusal('hidden');
      if (item.index >= cp.size) throw new Refusal('too_new');
      const proof = await api.get(`/v1/ledger/proof/inclusion?index=${item.index}&size=${cp.size}`);
      const leaf = await leafHash(item.entry);
      ok = await verifyInclusion(leaf, item.index, cp.size, proof.proof.map(hexToBytes), cp.root);
      if (!ok) why = 'mismatch';
    } catch (e) {
      why = e instanceof Refusal ? e.code : 'error';
    }
    cell.replaceChildren(mark(ok), ...(why ? [h('span', { class: 'muted small', 'data-why': why }, ` ${t(`audit.why.${why}`)}`)] : []));
    if (ok) verified++;
    else if (why !== 'hidden' && why !== 'too_new') failed++; // those two are not yet checkable, not changed
  }
  // The verdict first, for a person who reads no further: a changed entry is an alert.
  const verdict = failed ? h('p', { class: 'error', role: 'alert', id: 'audit-verdict', 'data-verdict': 'failed' }, t('audit.some_failed', { n: failed }))
    : verified === history.length ? h('p', { class: 'ok', id: 'audit-verdict', 'data-verdict': 'verified' }, t('audit.all_ok', { n: verified }))
      : h('p', { class: 'muted', id: 'audit-verdict', 'data-verdict': 'partly' }, t('audit.partly', { n: verified }));
  head.prepend(verdict);
}

export async function auditView([gid], ctx) {
  const base = `/v1/groups/${enc(gid)}`;
  const g = await api.get(base).catch(() => ({ name: gid }));
  const history = [];
  for (let after = null; ;) {
    const page = await api.get(`${base}/history${after ? `?after=${enc(after)}` : ''}`);
    history.push(...page.items);
    if (!page.next_cursor || !page.items.length) break;
    after = page.next_cursor;
  }
  const cells = new Map();
  const tbody = h('tbody', {}, history.map((item) => {
    const cell = h('td', { class: 'result' }, t('audit.checking'));
    cells.set(item.index, cell);
    let time = '';
    try {
      time = when(JSON.parse(item.entry).time);
    } catch { /* the text may be tampered with: verification will say so */ }
    const who = item.actor_display_name || item.actor_username || t('audit.system');
    return h('tr', { 'data-index': item.index, 'data-event': item.event || '' },
      h('td', {}, String(item.index)), h('td', {}, eventLabel(item.event || '')), h('td', {}, who), h('td', {}, time), cell);
  }));
  const head = h('div', { 'aria-live': 'polite' }, t('audit.checking'));
  const rows = { history, cells };
  // Verifying again fetches everything again: the history, the key, the checkpoint.
  const again = h('button', { type: 'button', id: 'reverify', onclick: () => ctx.rerender() }, t('audit.reverify'));
  verifyAll(gid, rows, head).catch((e) => head.replaceChildren(errorBox(e)));
  return h('div', {},
    h('h1', {}, t('audit.title', { name: g.name })),
    h('p', {}, t('audit.intro')),
    head,
    h('p', { class: 'muted small' }, t('audit.how')),
    h('table', { class: 'audit', id: 'audit' },
      h('thead', {}, h('tr', {}, ['audit.index', 'audit.event', 'audit.who', 'audit.time', 'audit.result'].map((k) => h('th', { scope: 'col' }, t(k))))),
      tbody),
    again,
    h('p', {}, h('a', { href: `#/g/${gid}` }, t('status.back'))));
}
