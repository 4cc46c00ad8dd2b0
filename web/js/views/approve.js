// SPDX-License-Identifier: MIT
// The phone approval page, /app/approve?c=<challenge>&n=<nonce>: what a challenge's QR
// code opens in any phone camera (its approve_url).  Signed in, the page shows what is
// being approved — the group by name, the action, the impact counts, the device and
// platform that asks, when it expires — and approves with this phone's passkey
// (navigator.credentials.get with the challenge's options) or declines.  The server
// holds the rules: only another device of the same user, with a passkey, may approve a
// QR code (QR_SAME_DEVICE otherwise).  Signed out, main.js keeps the address and sends
// the person to sign in first, then back here.
//
// securityView, #/me/security: the account's passkeys (register one for this device
// with user verification; the list with names and dates; removal after the password).

import { api, enc, request } from '../api.js';
import { addWords, counted, has, t, when } from '../i18n.js';
import { busy, field, h, toast } from '../ui.js';
import { approveWithPasskey, passkeyError, registerPasskey, supported } from '../webauthn.js';

addWords({ en: {
  'approve.title': 'Approve a request',
  'approve.intro': 'Another device of yours asks you to confirm this. Approve only if you started it yourself.',
  'approve.what': 'What',
  'approve.group': 'Group',
  'approve.impact': 'What it affects',
  'approve.from': 'Asked from',
  'approve.expires': 'Expires',
  'approve.state': 'State',
  'approve.action.dissolve': 'Dissolve the group',
  'approve.action.transfer': 'Transfer the group’s ownership',
  'approve.action.bulk_remove': 'Remove members from the group',
  'approve.action.restore': 'Restore the group',
  'approve.action.register_device_key': 'Trust a new device of yours',
  'approve.action.register_passkey': 'Trust a new passkey of yours',
  'approve.action.other': 'A protected action ({action})',
  'approve.group_unknown': 'a group you are not a member of',
  'approve.impact_line': '{members}, {messages}, {files}, {payments}',
  'approve.device_here': 'this device',
  'approve.platform.web': 'a web browser',
  'approve.platform.android': 'an Android phone',
  'approve.platform.ios': 'an iPhone or iPad',
  'approve.platform.windows': 'a Windows computer',
  'approve.platform.cli': 'the command line',
  'approve.platform.other': 'a device',
  'approve.approve': 'Approve with my passkey',
  'approve.decline': 'Decline',
  'approve.approved': 'Approved. The other device continues by itself.',
  'approve.declined': 'Declined. Nothing will be done.',
  'approve.state.pending': 'waiting for you',
  'approve.state.approved': 'approved',
  'approve.state.declined': 'declined',
  'approve.state.expired': 'expired',
  'approve.state.used': 'done',
  'approve.closed': 'This request is no longer waiting for a decision.',
  'approve.same_device': 'This is the device that asked. Open the link on your phone (another device of yours) to approve it.',
  'approve.no_passkey': 'This phone has no passkey for your account yet, so it cannot approve.',
  'approve.no_passkey_why': 'Approving needs a passkey (your fingerprint, face or screen lock).',
  'approve.setup': 'Set up a passkey on this phone',
  'approve.bad_link': 'This link is incomplete. Scan the code again.',
  'approve.signin_first': 'Sign in on this phone to approve the request; you will come back here.',
  'security.title': 'Security',
  'security.link': 'Security: passkeys',
  'security.intro': 'A passkey lets this device approve dissolutions and other protected actions with your fingerprint, face or screen lock. Add one on each phone or computer you trust.',
  'security.passkeys': 'Your passkeys',
  'security.none': 'No passkey yet.',
  'security.label': 'Name for this passkey',
  'security.label_hint': 'So you can tell them apart, e.g. “My phone”.',
  'security.add': 'Add a passkey on this device',
  'security.added': 'The passkey is added.',
  'security.created': 'added {when}',
  'security.used': 'last used {when}',
  'security.never_used': 'never used yet',
  'security.this_device': 'this device',
  'security.remove': 'Remove “{label}”',
  'security.remove_password': 'Your password (needed to remove a passkey)',
  'security.remove_go': 'Remove the passkey',
  'security.removed': 'The passkey is removed.',
  'security.unnamed': 'Passkey',
  'security.unsupported': 'This browser cannot create passkeys.',
} });
addWords({ zh: {
  'approve.title': '批准请求',
  'approve.intro': '你的另一台设备请你确认以下操作。只有在你本人发起时才批准。',
  'approve.what': '操作',
  'approve.group': '群',
  'approve.impact': '影响范围',
  'approve.from': '发起设备',
  'approve.expires': '过期时间',
  'approve.state': '状态',
  'approve.action.dissolve': '解散群',
  'approve.action.transfer': '转让群主',
  'approve.action.bulk_remove': '从群中移除成员',
  'approve.action.restore': '恢复群',
  'approve.action.register_device_key': '信任你的一台新设备',
  'approve.action.register_passkey': '信任你的一个新通行密钥',
  'approve.action.other': '受保护的操作（{action}）',
  'approve.group_unknown': '你不是成员的群',
  'approve.impact_line': '{members}，{messages}，{files}，{payments}',
  'approve.device_here': '本设备',
  'approve.platform.web': '网页浏览器',
  'approve.platform.android': 'Android 手机',
  'approve.platform.ios': 'iPhone 或 iPad',
  'approve.platform.windows': 'Windows 电脑',
  'approve.platform.cli': '命令行',
  'approve.platform.other': '设备',
  'approve.approve': '用我的通行密钥批准',
  'approve.decline': '拒绝',
  'approve.approved': '已批准。另一台设备会自动继续。',
  'approve.declined': '已拒绝。不会执行任何操作。',
  'approve.state.pending': '等待你的决定',
  'approve.state.approved': '已批准',
  'approve.state.declined': '已拒绝',
  'approve.state.expired': '已过期',
  'approve.state.used': '已完成',
  'approve.closed': '此请求已不再等待决定。',
  'approve.same_device': '这就是发起请求的设备。请在你的手机（你的另一台设备）上打开链接进行批准。',
  'approve.no_passkey': '这部手机还没有你账号的通行密钥，因此无法批准。',
  'approve.no_passkey_why': '批准需要通行密钥（指纹、面容或屏幕锁）。',
  'approve.setup': '在这部手机上设置通行密钥',
  'approve.bad_link': '此链接不完整。请重新扫描二维码。',
  'approve.signin_first': '请先在这部手机上登录以批准请求，登录后会回到这里。',
  'security.title': '安全',
  'security.link': '安全：通行密钥',
  'security.intro': '通行密钥让这台设备可以用指纹、面容或屏幕锁批准解散群等受保护的操作。请在你信任的每部手机或电脑上各添加一个。',
  'security.passkeys': '你的通行密钥',
  'security.none': '还没有通行密钥。',
  'security.label': '通行密钥名称',
  'security.label_hint': '便于区分，例如“我的手机”。',
  'security.add': '在本设备上添加通行密钥',
  'security.added': '通行密钥已添加。',
  'security.created': '添加于 {when}',
  'security.used': '上次使用 {when}',
  'security.never_used': '尚未使用',
  'security.this_device': '本设备',
  'security.remove': '移除“{label}”',
  'security.remove_password': '你的密码（移除通行密钥需要）',
  'security.remove_go': '移除通行密钥',
  'security.removed': '通行密钥已移除。',
  'security.unnamed': '通行密钥',
  'security.unsupported': '此浏览器无法创建通行密钥。',
} });

const word = (prefix, key, vars) => (has(prefix + key) ? t(prefix + key, vars) : t(prefix + 'other', vars));

function impactLine(i) {
  if (!i) return null;
  const n = (k) => (Number.isInteger(i[k]) ? i[k] : 0);
  return t('approve.impact_line', counted({ members: n('members'), messages: n('messages'), files: n('files'), payments: n('payments') }));
}

// The challenge's facts as a definition list.
function facts(c) {
  const by = c.requested_by || {};
  const dev = by.current ? t('approve.device_here') : word('approve.platform.', by.platform ?? 'other');
  const impact = impactLine(c.impact);
  return h('dl', { class: 'card facts', id: 'approve-facts' },
    h('dt', {}, t('approve.what')), h('dd', { id: 'approve-action' }, word('approve.action.', c.action, { action: c.action })),
    c.group ? [h('dt', {}, t('approve.group')), h('dd', { id: 'approve-group' }, c.group_name ?? t('approve.group_unknown'))] : null,
    impact ? [h('dt', {}, t('approve.impact')), h('dd', { id: 'approve-impact' }, impact)] : null,
    h('dt', {}, t('approve.from')), h('dd', { id: 'approve-from' }, dev),
    h('dt', {}, t('approve.expires')), h('dd', { id: 'approve-expires' }, when(c.expires_at)),
    h('dt', {}, t('approve.state')), h('dd', { id: 'approve-state', 'data-state': c.state }, word('approve.state.', c.state)));
}

export async function approveView([cid]) {
  const head = h('h1', {}, t('approve.title'));
  if (!cid) return h('div', {}, head, h('p', { class: 'error', role: 'alert', id: 'approve-bad-link' }, t('approve.bad_link')));
  let c = await api.get(`/v1/challenges/${enc(cid)}`);
  const [pk, dev] = await Promise.all([api.get('/v1/me/passkeys'), api.get('/v1/me/devices')]);
  const here = dev.items.find((d) => d.current);
  const slot = h('div', { 'aria-live': 'polite', id: 'approve-result' });
  const box = h('div', {});
  const paint = () => {
    const parts = [facts(c)];
    if (c.state !== 'pending') {
      parts.push(h('p', { id: 'approve-closed' }, t('approve.closed')));
    } else if (c.method === 'qr' && here && c.requested_by?.current) {
      parts.push(h('p', { class: 'error', role: 'alert', id: 'approve-same-device' }, t('approve.same_device')));
    } else {
      const approve = h('button', { type: 'button', id: 'approve-btn' }, t('approve.approve'));
      const decline = h('button', { type: 'button', class: 'danger', id: 'decline-btn' }, t('approve.decline'));
      if (!pk.items.length || !supported()) {
        // Say why approving cannot work here, instead of a dead button.
        approve.disabled = true;
        approve.setAttribute('aria-describedby', 'approve-no-passkey');
        parts.push(h('div', { class: 'card', id: 'approve-no-passkey' },
          h('p', {}, supported() ? t('approve.no_passkey') : t('security.unsupported'), ' ', t('approve.no_passkey_why')),
          supported() ? h('p', {}, h('a', { href: '#/me/security', id: 'approve-setup', onclick: () =>
            sessionStorage.setItem('qun.after_passkey', location.pathname + location.search) }, t('approve.setup'))) : null));
      }
      approve.addEventListener('click', busy(approve, slot, async () => {
        try {
          c = { ...c, ...(await approveWithPasskey(cid)) };
        } catch (e) {
          throw passkeyError(e);
        }
        paint();
        slot.replaceChildren(h('p', { class: 'ok', role: 'status', id: 'approve-done' }, t('approve.approved')));
      }));
      decline.addEventListener('click', busy(decline, slot, async () => {
        c = { ...c, ...(await api.post(`/v1/challenges/${enc(cid)}/decline`, {})) };
        paint();
        slot.replaceChildren(h('p', { class: 'ok', role: 'status', id: 'decline-done' }, t('approve.declined')));
      }));
      parts.push(h('div', { class: 'row actions-row' }, approve, decline));
    }
    box.replaceChildren(...parts);
  };
  paint();
  return h('div', { id: 'approve-page' }, head, h('p', {}, t('approve.intro')), box, slot);
}

export async function securityView(_params, ctx) {
  const list = await api.get('/v1/me/passkeys');
  const label = h('input', { name: 'passkey-label', id: 'passkey-label', maxlength: 64, autocomplete: 'off' });
  const add = h('button', { type: 'submit', id: 'passkey-add' }, t('security.add'));
  const addSlot = h('div', { 'aria-live': 'polite' });
  const addForm = h('form', { class: 'card', id: 'passkey-add-form', 'aria-labelledby': 'passkey-add-title' },
    h('h2', { id: 'passkey-add-title' }, t('security.add')),
    supported() ? [field(t('security.label'), label, t('security.label_hint')), add]
      : h('p', { class: 'error', id: 'passkey-unsupported' }, t('security.unsupported')),
    addSlot);
  addForm.addEventListener('submit', busy(add, addSlot, async () => {
    try {
      await registerPasskey(label.value.trim());
    } catch (e) {
      throw passkeyError(e);
    }
    toast(t('security.added'));
    // Signed out before (the approval page sent the person here): go back to it.
    const back = sessionStorage.getItem('qun.after_passkey');
    sessionStorage.removeItem('qun.after_passkey');
    if (back) location.assign(back);
    else ctx.rerender();
  }));
  const item = (p) => {
    const name = p.label || t('security.unnamed');
    const pw = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', id: `pw-${p.id}` });
    const go = h('button', { type: 'submit', class: 'danger', id: `remove-${p.id}` }, t('security.remove_go'));
    const slot = h('div');
    const form = h('form', { class: 'remove-passkey' },
      field(t('security.remove_password'), pw), go, slot);
    form.addEventListener('submit', busy(go, slot, async () => {
      await request('DELETE', `/v1/me/passkeys/${enc(p.id)}`, pw.value ? { password: pw.value } : {});
      toast(t('security.removed'));
      ctx.rerender();
    }));
    return h('li', { class: 'card passkey', 'data-id': p.id },
      h('p', {}, h('strong', {}, name), p.current ? [' — ', t('security.this_device')] : null),
      h('p', { class: 'muted small' }, t('security.created', { when: when(p.created_at) }), ' · ',
        p.last_used_at ? t('security.used', { when: when(p.last_used_at) }) : t('security.never_used')),
      h('details', {}, h('summary', {}, t('security.remove', { label: name })), form));
  };
  return h('div', {},
    h('h1', {}, t('security.title')),
    h('p', {}, t('security.intro')),
    h('h2', { id: 'passkeys-title' }, t('security.passkeys')),
    list.items.length ? h('ul', { class: 'list', id: 'passkeys', 'aria-labelledby': 'passkeys-title' }, list.items.map(item))
      : h('p', { class: 'muted', id: 'passkeys' }, t('security.none')),
    addForm);
}
