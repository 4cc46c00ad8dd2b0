// SPDX-License-Identifier: MIT
// Notifications that reach people: the inbox (#/inbox), the unread badge the navigation
// shows (inboxLink, kept live over the event stream: notification.created), the mail
// settings (#/me/email: an address verified by a code, the language of mail), and the
// landing page of an invitation by mail (#/invite/<token>).  Each notification is a code
// with parameters (names, impact figures): the words are here, in English and Chinese.

import { api, enc, session } from '../api.js';
import { addWords, counted, t, when } from '../i18n.js';
import { followAll } from '../live.js';
import { busy, errorBox, field, h, toast } from '../ui.js';

addWords({
  en: {
    'nav.inbox': 'Inbox',
    'nav.inbox_unread': 'Inbox, {n} unread',
    'inbox.title': 'Inbox',
    'inbox.none': 'Nothing here yet. Approvals asked of you, invitations, ownership offers and dissolution notices of your groups arrive here.',
    'inbox.mark_all': 'Mark all as read',
    'inbox.marked': 'All marked as read.',
    'inbox.new': 'New',
    'inbox.more': 'Older notifications',
    'inbox.settings': 'Mail settings',
    'inbox.open_approvals': 'Decide in Approvals',
    'inbox.open_groups': 'Open My groups',
    'inbox.open_group': 'Open the group',
    'inbox.approval.requested': '{by} asks to dissolve “{group}”. As {role}, your approval is needed.',
    'inbox.approval.impact': 'It affects {members}, {messages} ({rule}) and {files}. Decide before {until}.',
    'inbox.rule.keep': 'kept read-only for the owner',
    'inbox.rule.delete': 'to be deleted',
    'inbox.role.guardian': 'the guardian of {subject}',
    'inbox.role.school_admin': 'an admin of the school “{org}”',
    'inbox.role.org_admin': 'an admin of “{org}”',
    'inbox.role.risk_review': 'a server admin',
    'inbox.transfer.offered': '{from} offers you ownership of “{group}”.',
    'inbox.open_transfer': 'Accept or decline the offer',
    'inbox.invitation.received': '{by} invited you to “{group}” as {role}.',
    'inbox.invitation.member': 'a member',
    'inbox.invitation.admin': 'an admin',
    'inbox.dissolution.pending': '{by} asked to dissolve “{group}”. It will be dissolved on {until}; until then you can export your own copy.',
    'inbox.dissolution.cancelled': '{by} cancelled the dissolution of “{group}”. The group stays.',
    'inbox.dissolution.rejected': '{by} rejected the dissolution of “{group}”. The group stays.',
    'inbox.dissolution.expired': 'The dissolution of “{group}” was not approved in time. The group stays.',
    'inbox.dissolution.dissolved': '“{group}” has been dissolved. Its owner can restore it until {until}.',
    'inbox.dissolution.restored': '{by} restored “{group}”. You can use it again as before.',
    'inbox.someone': 'someone',
    'inbox.unknown': 'A notification this console cannot show yet.',
    'mail.title': 'Mail settings',
    'mail.intro': 'qun can also send your notifications by mail. Your address is used for nothing else.',
    'mail.address': 'Mail address',
    'mail.none': 'You have not given a mail address.',
    'mail.verified': 'Notifications go to {address} (verified).',
    'mail.pending': 'A code went to {address}. Type it here to confirm the address.',
    'mail.send': 'Send a code',
    'mail.change': 'Use another address',
    'mail.code': 'Code from the mail (8 digits)',
    'mail.verify': 'Confirm',
    'mail.remove': 'Remove my address',
    'mail.removed': 'Address removed.',
    'mail.done': 'Address confirmed: notifications will come by mail.',
    'mail.lang': 'Language of mail',
    'mail.lang_save': 'Save language',
    'mail.lang_saved': 'Language saved.',
    'invite.title': 'An invitation to qun',
    'invite.signin': 'To accept it, sign in or create an account first. You will come back here afterwards.',
    'invite.go_signin': 'Sign in or create an account',
    'invite.accept': 'Accept the invitation',
    'invite.done_admin': 'You are now an admin of “{org}”.',
    'invite.done_guardian': 'You are now the guardian of {minor} at “{org}”.',
    'invite.waiting': 'Decisions waiting for you: {n}.',
    'error.MAIL_DISABLED': 'This server does not send mail: its operator has not set it up.',
    'error.EMAIL_NOT_FOUND': 'You have no mail address yet.',
    'error.EMAIL_CODE_INVALID': 'That code is not the one we sent. Check the mail and try again.',
    'error.EMAIL_CODE_EXPIRED': 'No code is waiting, or it expired. Ask for a new one.',
    'error.EMAIL_CODE_TOO_SOON': 'A code was just sent. Wait a minute before asking again.',
    'error.EMAIL_CODE_LIMIT': 'Ten codes were sent today. Try again tomorrow.',
    'error.EMAIL_INVITE_INVALID': 'This invitation link is unknown, already used or expired. Ask for a new one.',
  },
  zh: {
    'nav.inbox': '通知',
    'nav.inbox_unread': '通知，{n} 条未读',
    'inbox.title': '通知',
    'inbox.none': '暂无通知。需要你审批的事项、邀请、群主转让和你所在群组的解散通知都会出现在这里。',
    'inbox.mark_all': '全部标为已读',
    'inbox.marked': '已全部标为已读。',
    'inbox.new': '新',
    'inbox.more': '更早的通知',
    'inbox.settings': '邮件设置',
    'inbox.open_approvals': '去审批',
    'inbox.open_groups': '打开我的群',
    'inbox.open_group': '打开群组',
    'inbox.approval.requested': '{by} 申请解散「{group}」。你是{role}，需要你的批准。',
    'inbox.approval.impact': '影响 {members}、{messages}（{rule}）和 {files}。请在 {until} 前决定。',
    'inbox.rule.keep': '仅群主可只读保留',
    'inbox.rule.delete': '将被删除',
    'inbox.role.guardian': '{subject} 的监护人',
    'inbox.role.school_admin': '学校「{org}」的管理员',
    'inbox.role.org_admin': '「{org}」的管理员',
    'inbox.role.risk_review': '服务器管理员',
    'inbox.transfer.offered': '{from} 想把「{group}」的群主转让给你。',
    'inbox.open_transfer': '接受或拒绝此转让',
    'inbox.invitation.received': '{by} 邀请你以{role}身份加入「{group}」。',
    'inbox.invitation.member': '成员',
    'inbox.invitation.admin': '管理员',
    'inbox.dissolution.pending': '{by} 申请解散「{group}」，群组将于 {until} 解散；在此之前你可以导出自己的副本。',
    'inbox.dissolution.cancelled': '{by} 取消了「{group}」的解散，群组保留。',
    'inbox.dissolution.rejected': '{by} 驳回了「{group}」的解散，群组保留。',
    'inbox.dissolution.expired': '「{group}」的解散未能按时获得批准，群组保留。',
    'inbox.dissolution.dissolved': '「{group}」已解散。群主可在 {until} 前恢复它。',
    'inbox.dissolution.restored': '{by} 恢复了「{group}」，你可以像以前一样使用它。',
    'inbox.someone': '有人',
    'inbox.unknown': '此控制台暂时无法显示这条通知。',
    'mail.title': '邮件设置',
    'mail.intro': 'qun 也可以通过邮件发送你的通知。你的邮箱不会用于其他用途。',
    'mail.address': '邮箱地址',
    'mail.none': '你还没有填写邮箱。',
    'mail.verified': '通知将发送到 {address}（已验证）。',
    'mail.pending': '验证码已发送到 {address}。请在此输入以确认邮箱。',
    'mail.send': '发送验证码',
    'mail.change': '使用其他邮箱',
    'mail.code': '邮件中的验证码（8 位数字）',
    'mail.verify': '确认',
    'mail.remove': '删除我的邮箱',
    'mail.removed': '邮箱已删除。',
    'mail.done': '邮箱已确认：通知将通过邮件发送。',
    'mail.lang': '邮件语言',
    'mail.lang_save': '保存语言',
    'mail.lang_saved': '语言已保存。',
    'invite.title': 'qun 邀请',
    'invite.signin': '要接受邀请，请先登录或注册账号，之后会回到这里。',
    'invite.go_signin': '登录或注册',
    'invite.accept': '接受邀请',
    'invite.done_admin': '你现在是「{org}」的管理员。',
    'invite.done_guardian': '你现在是「{org}」中 {minor} 的监护人。',
    'invite.waiting': '等你决定的事项：{n} 项。',
    'error.MAIL_DISABLED': '此服务器不发送邮件：管理员尚未配置。',
    'error.EMAIL_NOT_FOUND': '你还没有邮箱地址。',
    'error.EMAIL_CODE_INVALID': '验证码不正确。请检查邮件后重试。',
    'error.EMAIL_CODE_EXPIRED': '没有待验证的验证码，或已过期。请重新获取。',
    'error.EMAIL_CODE_TOO_SOON': '刚刚已发送验证码。请一分钟后再试。',
    'error.EMAIL_CODE_LIMIT': '今天已发送十次验证码。请明天再试。',
    'error.EMAIL_INVITE_INVALID': '此邀请链接无效、已使用或已过期。请重新索取。',
  },
});

// ---- the unread badge, live ----

let unread = 0;
let liveToken = null;
let stopLive = null;
let badgeEl = null;
let linkEl = null;

function paint() {
  if (!badgeEl || !linkEl) return;
  // The count is part of the link's text ("Inbox 3"); none is shown when nothing is unread.
  badgeEl.textContent = unread ? String(unread) : '';
  badgeEl.style.display = unread ? '' : 'none';
  linkEl.title = unread ? t('nav.inbox_unread', { n: unread }) : '';
}

async function refreshCount() {
  try {
    unread = (await api.get('/v1/me/notifications/unread')).unread;
    paint();
  } catch {
    // the badge waits for the next event or page
  }
}

// Follows notification.created for the signed-in account (one stream per sign-in).
function keepLive() {
  if (liveToken === session.token) return;
  if (stopLive) stopLive();
  stopLive = null;
  liveToken = session.token;
  if (!liveToken) return;
  stopLive = followAll(['notification.created'], {
    onEvent: (_type, n) => {
      if (session.token !== liveToken) return;
      unread += 1;
      paint();
      window.dispatchEvent(new CustomEvent('qun:notification', { detail: n }));
    },
    onOpen: refreshCount,
  });
}

// Signing out ends the stream of the account that was signed in.
window.addEventListener('hashchange', () => {
  if (session.token || !stopLive) return;
  stopLive();
  stopLive = null;
  liveToken = null;
  unread = 0;
});

// The navigation's inbox link with its unread count.
export function inboxLink() {
  keepLive();
  badgeEl = h('span', { class: 'badge', 'data-unread': '' });
  linkEl = h('a', { href: '#/inbox', id: 'nav-inbox', 'aria-current': location.hash === '#/inbox' ? 'page' : null },
    t('nav.inbox'), ' ', badgeEl);
  paint();
  refreshCount();
  return linkEl;
}

// ---- the inbox ----

const nameOf = (p) => (p ? p.display_name || p.username : t('inbox.someone'));

function sentence(n) {
  const p = n.params || {};
  const group = p.group_name || '';
  const by = nameOf(p.by);
  switch (n.kind) {
    case 'approval.requested': {
      const role = t('inbox.role.' + (p.approval_kind || 'risk_review'), { subject: nameOf(p.subject), org: p.org_name || '' });
      const im = p.impact || {};
      return [t('inbox.approval.requested', { by: nameOf(p.requested_by), group, role }),
        t('inbox.approval.impact', {
          ...counted({ members: im.members ?? 0, messages: im.messages ?? 0, files: im.files ?? 0 }),
          rule: t(im.messages_rule === 'keep' ? 'inbox.rule.keep' : 'inbox.rule.delete'), until: when(p.expires_at || 0),
        })];
    }
    case 'transfer.offered': return [t('inbox.transfer.offered', { from: nameOf(p.from), group })];
    case 'invitation.received':
      return [t('inbox.invitation.received', { by, group, role: t(p.role === 'admin' ? 'inbox.invitation.admin' : 'inbox.invitation.member') })];
    case 'dissolution.pending': return [t('inbox.dissolution.pending', { by, group, until: when(p.dissolves_at || 0) })];
    case 'dissolution.dissolved': return [t('inbox.dissolution.dissolved', { group, until: when(p.restorable_until || 0) })];
    case 'dissolution.cancelled':
    case 'dissolution.rejected':
    case 'dissolution.expired':
    case 'dissolution.restored':
      return [t('inbox.' + n.kind, { by, group })];
    default: return [t('inbox.unknown')];
  }
}

function action(n) {
  const gid = n.params?.group;
  if (n.kind === 'approval.requested') return h('a', { href: '#/approvals' }, t('inbox.open_approvals'));
  if (n.kind === 'transfer.offered' && gid) return h('a', { href: `#/g/${enc(gid)}/transfer` }, t('inbox.open_transfer'));
  if (n.kind === 'invitation.received' || n.kind === 'dissolution.dissolved') return h('a', { href: '#/groups' }, t('inbox.open_groups'));
  if (gid) return h('a', { href: `#/g/${enc(gid)}` }, t('inbox.open_group'));
  return null;
}

function item(n) {
  const [first, ...more] = sentence(n);
  return h('li', { class: 'card note', 'data-kind': n.kind, 'data-read': n.read ? '1' : '0' },
    h('p', {}, n.read ? null : [h('span', { class: 'badge state-pending' }, t('inbox.new')), ' '], first),
    more.map((s) => h('p', {}, s)),
    h('p', { class: 'muted' }, when(n.created_at), ' · ', action(n)));
}

export async function inboxView(_params, ctx) {
  const first = await api.get('/v1/me/notifications?limit=50');
  unread = first.unread;
  paint();
  const list = h('ul', { class: 'list', id: 'inbox' }, first.items.map(item));
  const slot = h('div');
  let cursor = first.next_cursor;
  // Buttons are display: inline-block, which the hidden attribute does not undo.
  // (set through the CSSOM: the console's CSP refuses style attributes).
  const more = h('button', { type: 'button', id: 'inbox-more' }, t('inbox.more'));
  if (!cursor) more.style.display = 'none';
  more.addEventListener('click', busy(more, slot, async () => {
    const page = await api.get(`/v1/me/notifications?limit=50&after=${enc(cursor)}`);
    list.append(...page.items.map(item));
    cursor = page.next_cursor;
    if (!cursor) more.style.display = 'none';
  }));
  const markAll = h('button', { type: 'button', id: 'inbox-read', disabled: first.unread === 0 }, t('inbox.mark_all'));
  markAll.addEventListener('click', busy(markAll, slot, async () => {
    const r = await api.post('/v1/me/notifications/read', {});
    unread = r.unread;
    paint();
    toast(t('inbox.marked'));
    ctx.rerender();
  }));
  const onNew = () => ctx.current() && ctx.rerender();
  window.addEventListener('qun:notification', onNew);
  ctx.onLeave(() => window.removeEventListener('qun:notification', onNew));
  return h('div', {}, h('h1', {}, t('inbox.title')),
    h('div', { class: 'row' }, markAll, h('a', { href: '#/me/email' }, t('inbox.settings'))),
    slot,
    first.items.length ? list : h('p', { class: 'muted', id: 'inbox' }, t('inbox.none')),
    more);
}

// ---- mail settings ----

export async function mailView(_params, ctx) {
  const [mail, lang] = await Promise.all([api.get('/v1/me/email'), api.get('/v1/me/language')]);
  const parts = [h('h1', {}, t('mail.title')), h('p', {}, t('mail.intro'))];
  const pending = mail.address && !mail.verified && mail.code_expires_at;
  parts.push(h('p', { id: 'mail-state' },
    !mail.address ? t('mail.none') : mail.verified ? t('mail.verified', { address: mail.address })
      : t('mail.pending', { address: mail.address })));
  // Each form says what went wrong right under its own button, not at the page's end.
  if (pending) {
    const code = h('input', { name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: 8, required: true });
    const go = h('button', { type: 'submit' }, t('mail.verify'));
    const slot = h('div');
    const form = h('form', { class: 'card', id: 'mail-verify' }, field(t('mail.code'), code), go, slot);
    form.addEventListener('submit', busy(go, slot, async () => {
      await api.post('/v1/me/email/verify', { code: code.value.trim() });
      toast(t('mail.done'));
      ctx.rerender();
    }));
    parts.push(form);
  }
  // A verified address is not offered back as "another address"; one still unverified is,
  // so a typo can be mended.
  const address = h('input', { name: 'address', type: 'email', autocomplete: 'email', maxlength: 254, required: true,
    value: mail.verified ? '' : mail.address || '' });
  const send = h('button', { type: 'submit' }, t('mail.send'));
  const addressSlot = h('div');
  const form = h('form', { class: 'card', id: 'mail-address' },
    field(mail.address ? t('mail.change') : t('mail.address'), address), send, addressSlot);
  form.addEventListener('submit', busy(send, addressSlot, async () => {
    await api.post('/v1/me/email', { address: address.value.trim() });
    ctx.rerender();
  }));
  parts.push(form);
  if (mail.address) {
    const remove = h('button', { type: 'button', class: 'danger' }, t('mail.remove'));
    const removeSlot = h('div');
    remove.addEventListener('click', busy(remove, removeSlot, async () => {
      await api.del('/v1/me/email');
      toast(t('mail.removed'));
      ctx.rerender();
    }));
    parts.push(h('p', {}, remove), removeSlot);
  }
  const pick = h('select', { name: 'mail-lang' },
    h('option', { value: 'en', selected: lang.lang === 'en' }, 'English'),
    h('option', { value: 'zh-CN', selected: lang.lang === 'zh-CN', lang: 'zh-Hans' }, '简体中文'));
  const save = h('button', { type: 'submit' }, t('mail.lang_save'));
  const langSlot = h('div');
  const langForm = h('form', { class: 'card', id: 'mail-lang' }, field(t('mail.lang'), pick), save, langSlot);
  langForm.addEventListener('submit', busy(save, langSlot, async () => {
    await api.post('/v1/me/language', { lang: pick.value });
    toast(t('mail.lang_saved'));
  }));
  parts.push(langForm);
  return h('div', {}, parts);
}

// ---- an invitation by mail ----

const INVITE_KEY = 'qun.invite';

// After signing in, a pending invitation brings the person back to it (main.js).
export function pendingInvite() {
  return sessionStorage.getItem(INVITE_KEY);
}

export async function inviteView([token]) {
  if (!session.token) {
    sessionStorage.setItem(INVITE_KEY, token);
    return h('div', {}, h('h1', {}, t('invite.title')), h('p', {}, t('invite.signin')),
      h('p', {}, h('a', { class: 'button', href: '#/login' }, t('invite.go_signin'))));
  }
  sessionStorage.removeItem(INVITE_KEY);
  const slot = h('div');
  const go = h('button', { type: 'button', id: 'invite-accept' }, t('invite.accept'));
  const out = h('div', { id: 'invite-result' });
  go.addEventListener('click', busy(go, slot, async () => {
    const r = await api.post('/v1/email-invites/redeem', { token });
    go.style.display = 'none';
    out.replaceChildren(
      h('p', {}, r.role === 'admin' ? t('invite.done_admin', { org: r.org_name })
        : t('invite.done_guardian', { org: r.org_name, minor: nameOf(r.minor) })),
      r.approvals.length ? h('p', {}, t('invite.waiting', { n: r.approvals.length }), ' ',
        h('a', { href: '#/approvals' }, t('inbox.open_approvals'))) : null);
  }));
  return h('div', {}, h('h1', {}, t('invite.title')), go, slot, out);
}
