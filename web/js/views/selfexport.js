// SPDX-License-Identifier: MIT
// "Export my copy": during a dissolution notice any member exports what they could see
// (POST /v1/groups/{id}/exports with scope "self"), encrypted to an age recipient they
// name, so the server never holds a way to read it.  The card polls the export job and
// then offers the .age file; the download goes through fetch (the bearer token is never
// in a URL) and is handed to the browser as a blob.
import { api, enc, request, session } from '../api.js';
import { t } from '../i18n.js';
import { busy, field, h } from '../ui.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function download(id) {
  const res = await fetch(`/v1/exports/${enc(id)}/download`, {
    headers: { Authorization: 'Bearer ' + session.token }, cache: 'no-store',
  });
  if (!res.ok) return request('GET', `/v1/exports/${enc(id)}`); // shows the problem as an error
  return URL.createObjectURL(await res.blob());
}

export function selfExportCard(gid, onLeave) {
  const recipient = h('input', {
    name: 'age-recipient', id: 'export-recipient', required: true, maxlength: 200, autocomplete: 'off',
    spellcheck: 'false', placeholder: 'age1…', pattern: 'age1[02-9ac-hj-np-z]{58}',
  });
  const slot = h('div', { id: 'export-status', role: 'status' });
  const btn = h('button', { type: 'submit', id: 'export-btn' }, t('export.start'));
  const form = h('form', { class: 'row' }, field(t('export.recipient'), recipient, t('export.hint')), btn);
  let stopped = false;
  let blobUrl = null;
  onLeave(() => {
    stopped = true;
    if (blobUrl) URL.revokeObjectURL(blobUrl);
  });
  form.addEventListener('submit', busy(btn, slot, async () => {
    const x = await api.post(`/v1/groups/${enc(gid)}/exports`, { recipients: [recipient.value.trim()], scope: 'self' });
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
    slot.replaceChildren(h('a', { class: 'button', id: 'export-download', href: blobUrl, download: `${x.id}.age` },
      t('export.ready', { name: `${x.id}.age` })));
  }));
  return h('section', { 'aria-labelledby': 'h-export', class: 'card wide', id: 'self-export' },
    h('h2', { id: 'h-export' }, t('export.title')), h('p', { class: 'muted' }, t('export.intro')), form, slot);
}
