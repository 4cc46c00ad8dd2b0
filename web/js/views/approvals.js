// SPDX-License-Identifier: MIT
// The approvals inbox: everything waiting for this user's decision (org admins,
// school admins, guardians, risk reviewers), each approved or rejected with a reason.
// approvalItem is also the risk-review queue's row (views/admin.js).

import { api, enc } from '../api.js';
import { addWords, counted, has, t, when } from '../i18n.js';
import { errorBox, field, h, toast } from '../ui.js';
import { sendWithProofs } from '../proofs.js';
import { humanSize } from './files.js';

addWords({ en: {
  'approvals.what': 'Dissolve “{group}” ({gkind})',
  'approvals.by': 'Requested by {by}',
  'approvals.as': 'You decide as: {kind}',
  'approvals.window': 'Requested {created}; open until {expires}',
  'approvals.steps_running': 'Complete the verification below: your decision is then recorded by itself.',
  'approvals.impact': 'It affects {members}, {messages}, {files} ({size}) and {payments}.',
  'approvals.messages.delete': 'The messages are deleted once the group can no longer be restored.',
  'approvals.messages.keep': 'The messages are kept read-only for the owner.',
} });
addWords({ zh: {
  'approvals.what': '解散“{group}”（{gkind}）',
  'approvals.by': '申请人：{by}',
  'approvals.as': '你的审批身份：{kind}',
  'approvals.window': '{created} 提出；{expires} 前有效',
  'approvals.steps_running': '请完成下方的验证，之后会自动记录你的决定。',
  'approvals.impact': '涉及 {members}、{messages}、{files}（{size}）和 {payments}。',
  'approvals.messages.delete': '消息将在群无法再恢复后删除。',
  'approvals.messages.keep': '消息将只读保留，仅群主可见。',
} });

// Who decides this approval, in the reader's words: never the kind's key.
function kindLine(a) {
  const minor = a.subject_display_name || a.subject_username;
  if (a.kind === 'guardian' && minor) return t('approval.kind.guardian_of', { minor });
  if ((a.kind === 'org_admin' || a.kind === 'school_admin') && a.org_name) return t('approval.kind.admin_of', { org: a.org_name });
  return has('approval.kind.' + a.kind) ? t('approval.kind.' + a.kind) : t('approval.kind.other');
}

// One approval with its reason field and the two decisions; ctx.rerender() after one.
// Approving tries as it is; a 428 that names requirements becomes steps (proofs.js)
// and the decision goes again by itself once they are done.
export function approvalItem(a, ctx) {
  const reason = h('textarea', { name: 'reason', rows: 2, maxlength: 500 });
  const slot = h('div');
  const steps = h('div', { 'aria-live': 'polite' });
  const why = h('p', { class: 'hint', id: `approval-why-${a.id}`, hidden: true }, t('approvals.steps_running'));
  const buttons = [];
  const decide = (verb) => async () => {
    if (verb === 'reject' && !reason.value.trim()) {
      slot.replaceChildren(h('p', { class: 'error', role: 'alert' }, t('approvals.reason')));
      reason.focus();
      return;
    }
    slot.replaceChildren();
    for (const b of buttons) b.disabled = true;
    why.hidden = false;
    try {
      const body = reason.value.trim() ? { reason: reason.value.trim() } : {};
      await sendWithProofs(steps, null, { action: 'approve', group: a.group, groupName: a.group_name, ctx },
        (proofs) => api.post(`/v1/approvals/${enc(a.id)}/${verb}`, { ...body, ...proofs }));
      toast(t('approvals.done'));
      ctx.rerender();
    } catch (e) {
      slot.replaceChildren(errorBox(e));
      for (const b of buttons) b.disabled = false;
      why.hidden = true;
    }
  };
  const by = a.requested_by_display_name || a.requested_by_username || a.requested_by;
  buttons.push(h('button', { type: 'button', class: 'approve', onclick: decide('approve'), 'aria-describedby': why.id }, t('approvals.approve')),
    h('button', { type: 'button', class: 'danger', onclick: decide('reject'), 'aria-describedby': why.id }, t('approvals.reject')));
  return h('li', { class: 'card approval', 'data-id': a.id, 'data-kind': a.kind },
    h('p', { class: 'approval-what' }, t('approvals.what', { group: a.group_name, gkind: has('kind.' + a.group_kind) ? t('kind.' + a.group_kind) : a.group_kind })),
    h('p', {}, t('approvals.by', { by })),
    a.impact ? h('p', { class: 'approval-impact' }, t('approvals.impact', { ...counted(a.impact), size: humanSize(a.impact.file_bytes) }),
      has('approvals.messages.' + a.messages) ? [t('punct.sentence'), t('approvals.messages.' + a.messages)] : null) : null,
    h('p', { class: 'approval-as' }, t('approvals.as', { kind: kindLine(a) })),
    h('p', { class: 'muted' }, t('approvals.window', { created: when(a.created_at), expires: when(a.expires_at) })),
    field(t('approvals.reason'), reason),
    h('div', { class: 'row' }, buttons),
    why, steps, slot);
}

export async function approvalsView(_params, ctx) {
  const page = await api.get('/v1/approvals');
  return h('div', {}, h('h1', {}, t('approvals.title')),
    page.items.length ? h('ul', { class: 'list', id: 'approvals' }, page.items.map((a) => approvalItem(a, ctx)))
      : h('p', { class: 'muted', id: 'approvals' }, t('approvals.none')));
}
