// SPDX-License-Identifier: MIT
// The approvals inbox: everything waiting for this user's decision (org admins,
// school admins, guardians, risk reviewers), each approved or rejected with a reason.
// approvalItem is also the risk-review queue's row (views/admin.js).

import { api, enc } from '../api.js';
import { t, when } from '../i18n.js';
import { errorBox, field, h, toast } from '../ui.js';

// One approval with its reason field and the two decisions; ctx.rerender() after one.
export function approvalItem(a, ctx) {
  const reason = h('textarea', { name: 'reason', rows: 2, maxlength: 500 });
  const slot = h('div');
  const decide = (verb) => async () => {
    if (verb === 'reject' && !reason.value.trim()) {
      slot.replaceChildren(h('p', { class: 'error', role: 'alert' }, t('approvals.reason')));
      reason.focus();
      return;
    }
    try {
      const body = reason.value.trim() ? { reason: reason.value.trim() } : {};
      await api.post(`/v1/approvals/${enc(a.id)}/${verb}`, body);
      toast(t('approvals.done'));
      ctx.rerender();
    } catch (e) {
      slot.replaceChildren(errorBox(e));
    }
  };
  return h('li', { class: 'card approval', 'data-id': a.id, 'data-kind': a.kind },
    h('p', {}, t('approvals.item', { kind: a.kind, group: a.group_name, gkind: a.group_kind, by: a.requested_by_display_name || a.requested_by })),
    h('p', { class: 'muted' }, when(a.created_at), ' → ', when(a.expires_at)),
    field(t('approvals.reason'), reason),
    h('div', { class: 'row' },
      h('button', { type: 'button', class: 'approve', onclick: decide('approve') }, t('approvals.approve')),
      h('button', { type: 'button', class: 'danger', onclick: decide('reject') }, t('approvals.reject'))),
    slot);
}

export async function approvalsView(_params, ctx) {
  const page = await api.get('/v1/approvals');
  return h('div', {}, h('h1', {}, t('approvals.title')),
    page.items.length ? h('ul', { class: 'list', id: 'approvals' }, page.items.map((a) => approvalItem(a, ctx)))
      : h('p', { class: 'muted', id: 'approvals' }, t('approvals.none')));
}
