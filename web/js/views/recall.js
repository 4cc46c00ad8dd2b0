// SPDX-License-Identifier: MIT
// Recalling and removing messages in a group's history (DELETE /v1/groups/{id}/messages/{seq},
// docs/api.md "Recalling and removing messages").  The author may recall their own message
// for the group's recall window (two minutes unless the policy says otherwise: the server
// decides, and its refusal is shown); an owner removes anyone's message and an admin a
// member's, with a reason asked for in a dialog.  A recalled message stays in place as
// "Message recalled" or "Removed by …: reason", here and, over the event stream
// (message.recalled), on every member's open page.

import { request, session } from '../api.js';
import { t } from '../i18n.js';
import { errorBox, h, toast } from '../ui.js';

// The window when the group's answer does not say (policies/kinds.json's default).  Only
// used to stop offering the button; the server enforces the group's own window.
const DEFAULT_RECALL_WINDOW_SECONDS = 120;

const RANK = { member: 1, admin: 2, owner: 3 };

// The group's recall window in seconds (GET /v1/groups/{id} says; 0 turns recall off).
const windowOf = (opts) => opts.recallWindow ?? DEFAULT_RECALL_WINDOW_SECONDS;

// The words a recalled message shows in place of its text.
export function recalledText(m, names) {
  if (!m.removed) return t('recall.recalled');
  const by = m.by_display_name || names.get(m.by) || m.by_username || t('recall.someone');
  return m.reason ? t('recall.removed_reason', { name: by, reason: m.reason }) : t('recall.removed', { name: by });
}

// The list item of a recalled message (same shape as group.js's messageItem).
export function recalledItem(m, names, time) {
  return h('li', { class: 'msg recalled', 'data-seq': m.seq, 'data-author': m.author, 'data-recalled': m.removed ? 'removed' : 'recalled' },
    h('span', { class: 'who' }, m.author_display_name || names.get(m.author) || m.author_username || t('notice.someone')),
    h('span', { class: 'text' }, recalledText(m, names)),
    time);
}

// A dialog asking for the reason of a removal; resolves to the reason, or null when cancelled.
// The message is quoted in the dialog: an admin removing one among many sees which.
function askReason(authorName, text) {
  return new Promise((resolve) => {
    const input = h('input', { name: 'recall-reason', maxlength: 500, required: true, autocomplete: 'off', id: 'recall-reason' });
    const confirm = h('button', { type: 'submit', class: 'danger', id: 'recall-confirm' }, t('recall.remove'));
    const cancel = h('button', { type: 'button', id: 'recall-cancel' }, t('recall.cancel'));
    const form = h('form', { method: 'dialog' },
      h('h2', { id: 'recall-title' }, t('recall.remove_title', { name: authorName })),
      text ? h('blockquote', { id: 'recall-quote', class: 'quote' }, text.length > 200 ? text.slice(0, 200) + '…' : text) : null,
      h('p', { class: 'muted' }, t('recall.remove_hint')),
      h('label', { for: 'recall-reason' }, t('recall.reason')), input,
      h('div', { class: 'row' }, confirm, cancel));
    const dlg = h('dialog', { id: 'recall-dialog', 'aria-labelledby': 'recall-title' }, form);
    let done = false;
    const finish = (v) => {
      if (done) return;
      done = true;
      dlg.close();
      dlg.remove();
      resolve(v);
    };
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const reason = input.value.trim();
      if (reason) finish(reason);
    });
    cancel.addEventListener('click', () => finish(null));
    dlg.addEventListener('cancel', () => finish(null));
    document.body.append(dlg);
    dlg.showModal();
    input.focus();
  });
}

// The Recall / Remove button for message m, or null when the viewer may not take it down.
// opts: {base, myRole, roles: Map openid -> role, names, onDone(recalledMessage)}.
export function recallButton(m, opts) {
  if (m.recalled || m.kind === 'system') return null;
  const mine = m.author === session.openid;
  const my = RANK[opts.myRole] || 0;
  const theirs = RANK[opts.roles.get(m.author)] || RANK.member;
  let kind = null;
  if (mine && my >= RANK.admin) kind = 'recall';
  else if (mine && Date.now() / 1000 - m.created_at < windowOf(opts)) kind = 'recall';
  else if (!mine && my >= RANK.admin && my > theirs) kind = 'remove';
  if (!kind) return null;
  const author = m.author_display_name || opts.names.get(m.author) || '';
  const btn = h('button', {
    type: 'button', class: `link recall-action ${kind}`, 'data-action': kind,
    'aria-label': kind === 'recall' ? t('recall.recall_label') : t('recall.remove_label', { name: author }),
  }, t(kind === 'recall' ? 'recall.recall' : 'recall.remove'));
  if (kind === 'recall' && my < RANK.admin) {
    // The window closes: the button goes (the server would refuse anyway).
    const left = (m.created_at + windowOf(opts)) * 1000 - Date.now();
    setTimeout(() => btn.remove(), Math.max(0, left));
  }
  btn.addEventListener('click', async () => {
    let body;
    if (kind === 'remove') {
      const reason = await askReason(author, m.file ? m.file.name : m.text);
      if (reason === null) return;
      body = { reason };
    }
    btn.disabled = true;
    try {
      const out = await request('DELETE', `${opts.base}/messages/${m.seq}`, body);
      opts.onDone(out);
      toast(t(kind === 'recall' ? 'recall.done_recall' : 'recall.done_remove'));
    } catch (e) {
      btn.disabled = false;
      const li = btn.closest('li');
      li?.querySelector('.error')?.remove();
      li?.append(errorBox(e));
    }
  });
  return btn;
}

// Replace the list item of the recalled message (from the answer or a message.recalled
// event) in list.
export function applyRecall(list, m, names) {
  const li = list.querySelector(`[data-seq="${m.seq}"]`);
  if (!li || li.dataset.recalled) return;
  li.replaceWith(recalledItem(m, names, li.querySelector('time')));
}
