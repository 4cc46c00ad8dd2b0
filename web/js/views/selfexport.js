// SPDX-License-Identifier: MIT
// "Export my copy" and "Export the group": during a dissolution notice any member
// exports what they could see (POST /v1/groups/{id}/exports with scope "self"), and the
// owner the whole group at any time (scope "group").  The archive is protected by a
// passphrase the person chooses (age's scrypt stanza: `age -d` asks for it), or, as the
// advanced choice, encrypted to an age recipient they name; either way the server never
// keeps a way to read it.  The transcript inside is written in the console's language
// and the browser's time zone.  The card polls the export job and then offers the .age
// file; the download goes through fetch (the bearer token is never in a URL) and is
// handed to the browser as a blob.
import { api, enc, request, session } from '../api.js';
import { language, t } from '../i18n.js';
import { busy, field, h } from '../ui.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const MIN_CHARS = 10;

async function download(id) {
  const res = await fetch(`/v1/exports/${enc(id)}/download`, {
    headers: { Authorization: 'Bearer ' + session.token }, cache: 'no-store',
  });
  if (!res.ok) return request('GET', `/v1/exports/${enc(id)}`); // shows the problem as an error
  return URL.createObjectURL(await res.blob());
}

// The file's name a person recognizes in their downloads: the group's name and the day,
// with what a file system refuses replaced.
function fileName(groupName) {
  const d = new Date();
  const day = `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  const safe = (groupName || 'qun').replace(/[\/\\:*?"<>|\x00-\x1f]+/g, '_').trim().slice(0, 80) || 'qun';
  return `${safe} ${day}.age`;
}

function exportCard({ gid, scope, onLeave, id, title, intro, groupName }) {
  const p = (s) => `${id}-${s}`;
  const recipient = h('input', {
    name: 'age-recipient', id: id === 'self-export' ? 'export-recipient' : p('recipient'), maxlength: 200,
    autocomplete: 'off', spellcheck: 'false', placeholder: 'age1…', pattern: 'age1[02-9ac-hj-np-z]{58}',
  });
  const pass = h('input', { type: 'password', name: 'passphrase', id: p('passphrase'), autocomplete: 'new-password', maxlength: 1024 });
  const again = h('input', { type: 'password', name: 'passphrase-again', id: p('passphrase-again'), autocomplete: 'new-password', maxlength: 1024 });
  // One choice a line: the two labels are long, in Chinese too.
  const choice = (value, label, checked) => h('div', {}, h('label', { class: 'choice' },
    h('input', { type: 'radio', name: p('protect'), value, id: p('protect-' + value), checked }), ' ', label));
  const byPass = choice('passphrase', t('xp.passphrase_opt'), true);
  const byKey = choice('key', t('xp.key_opt'), false);
  const passFields = h('div', { id: p('passphrase-fields') },
    field(t('xp.passphrase'), pass, t('xp.passphrase_hint')), field(t('xp.confirm'), again));
  const keyFields = h('div', { id: p('key-fields'), hidden: true },
    field(t('export.recipient'), recipient, t('export.hint')));
  const how = h('details', { class: 'hint', id: p('how') }, h('summary', {}, t('xp.how_title')),
    h('p', { id: p('how-text') }, t('xp.how_passphrase')));
  const usingKey = () => byKey.querySelector('input').checked;
  const paint = () => {
    keyFields.hidden = !usingKey();
    passFields.hidden = usingKey();
    recipient.required = usingKey();
    pass.required = again.required = !usingKey();
    how.querySelector('p').textContent = t(usingKey() ? 'xp.how_key' : 'xp.how_passphrase');
  };
  byPass.querySelector('input').addEventListener('change', paint);
  byKey.querySelector('input').addEventListener('change', paint);
  paint();
  const slot = h('div', { id: id === 'self-export' ? 'export-status' : p('status'), role: 'status' });
  const btn = h('button', { type: 'submit', id: id === 'self-export' ? 'export-btn' : p('btn') }, t('export.start'));
  const form = h('form', { class: 'stack' },
    h('fieldset', {}, h('legend', {}, t('xp.protect')), byPass, byKey), passFields, keyFields, how, h('div', { class: 'row' }, btn));
  let stopped = false;
  let blobUrl = null;
  onLeave(() => {
    stopped = true;
    if (blobUrl) URL.revokeObjectURL(blobUrl);
  });
  form.addEventListener('submit', busy(btn, slot, async () => {
    const body = { scope };
    if (usingKey()) {
      body.recipients = [recipient.value.trim()];
    } else {
      if ([...pass.value].length < MIN_CHARS) {
        slot.replaceChildren(h('p', { class: 'error', role: 'alert' }, t('xp.too_short')));
        return;
      }
      if (pass.value !== again.value) {
        slot.replaceChildren(h('p', { class: 'error', role: 'alert' }, t('xp.mismatch')));
        return;
      }
      body.passphrase = pass.value;
      body.lang = language() === 'zh' ? 'zh-CN' : 'en';
      body.tz_offset = -new Date().getTimezoneOffset();
    }
    const x = await api.post(`/v1/groups/${enc(gid)}/exports`, body);
    pass.value = again.value = ''; // the passphrase stays with the person, not the page
    let st = x;
    while (!stopped && st.state !== 'done' && st.state !== 'failed') {
      slot.replaceChildren(h('p', { class: 'muted' }, t('export.running')));
      await sleep(500);
      st = await api.get(`/v1/exports/${enc(x.id)}`);
    }
    if (stopped) return;
    if (st.state === 'failed') {
      slot.replaceChildren(h('p', { class: 'error' }, t('export.failed', { why: st.error || '' })));
      return;
    }
    blobUrl = await download(x.id);
    const name = fileName(groupName);
    slot.replaceChildren(h('a', { class: 'button', id: id === 'self-export' ? 'export-download' : p('download'), href: blobUrl, download: name },
      t('export.ready', { name })));
  }));
  return h('section', { 'aria-labelledby': p('h'), class: 'card wide', id },
    h('h2', { id: p('h') }, title), h('p', { class: 'muted' }, intro), form, slot);
}

export function selfExportCard(gid, onLeave, groupName) {
  return exportCard({ gid, scope: 'self', onLeave, id: 'self-export', title: t('export.title'), intro: t('export.intro'), groupName });
}

// The owner's export of the whole group, shown while the group is live.
export function groupExportCard(gid, onLeave, groupName) {
  return exportCard({ gid, scope: 'group', onLeave, id: 'group-export', title: t('xp.group_title'), intro: t('xp.group_intro'), groupName });
}
