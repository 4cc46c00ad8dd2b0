// SPDX-License-Identifier: MIT
// After a dissolution, scroll-back and account basics (issue 17):
//   goneView       what a member sees on a dissolved group (the 410's `gone`: name, date,
//                  what became of their data, the successor group);
//   restoreCard    the owner's Restore button during the purge grace, with whatever
//                  verification a 428 names (the password again today) as proofs.js steps;
//   scrollBack     "Load earlier messages" above the message list, also on scrolling to
//                  its top, through the whole history (the cursor is a seq);
//   accountPasswordView  #/me/password: change one's password;
//   adminAllowed / refreshAdmin  whether the Admin menu is shown (only to someone with
//                  an admin page to use: a server admin, the compliance role, an org admin).
// Its words are added to the dictionaries here (i18n.js addWords).

import { api, enc } from '../api.js';
import { addWords, language, t, when } from '../i18n.js';
import { busy, errorBox, field, h, toast } from '../ui.js';
import { sendWithProofs } from '../proofs.js';

addWords({ en: {
  'gone.title': '“{name}” was dissolved',
  'gone.title_unknown': 'This group was dissolved',
  'gone.when': 'Dissolved on {when}.',
  'gone.plain': 'This group has been dissolved. Its details are no longer available to you.',
  'gone.data': 'What happened to your data',
  'gone.purge': 'The group’s messages and files are deleted for good after {when}. Until then the owner may restore the group.',
  'gone.purge_keep': 'The group’s files are deleted for good after {when}. Until then the owner may restore the group.',
  'gone.purging': 'The group’s data is being deleted now.',
  'gone.purged': 'The group’s data has been deleted.',
  'gone.kept.messages.owner_read_only': 'Messages: kept read-only, visible to the owner only (the owner chose to keep them).',
  'gone.kept.payments.retention': 'Payment records: kept for the retention period the law requires, then deleted.',
  'gone.kept.bill_lines.personal_record': 'Your own bill lines stay in your bill: they are your personal record.',
  'gone.kept.everything.legal_hold': 'Everything: a legal hold keeps the group’s data from being deleted.',
  'gone.kept.other': 'Kept: {what} ({why}).',
  'gone.messages_deleted': 'Messages: deleted with the purge (the owner chose to delete them).',
  'gone.successor': 'The group continues in “{name}”.',
  'gone.successor_link': 'Go to “{name}”',
  'gone.back': 'Back to my groups',
  'restore.title': 'Restore this group',
  'restore.intro': 'You can restore the group until {when}. Members then get it back as it was.',
  'restore.button': 'Restore the group',
  'restore.steps_running': 'Complete the verification below: the group is then restored by itself.',
  'restore.done': 'The group is restored.',
  'scroll.earlier': 'Load earlier messages',
  'scroll.loading': 'Loading earlier messages…',
  'scroll.start': 'This is the beginning of the conversation.',
  'scroll.loaded': '{n} earlier messages loaded.',
  'account.password_link': 'Change password',
  'account.back': 'Back to your profile',
  'account.password_title': 'Change your password',
  'account.password_intro': 'Your other sessions are signed out when the password changes.',
  'account.current': 'Current password',
  'account.new': 'New password',
  'account.again': 'New password again',
  'account.save': 'Change password',
  'account.saved': 'Your password is changed. Your other sessions were signed out.',
  'account.mismatch': 'The two new passwords differ.',
  'account.wrong_current': 'The current password is wrong.',
  'account.same': 'The new password must differ from the current one.',
  'account.too_short': 'The new password needs at least 8 characters.',
  'auth.password_again': 'Password again',
  'auth.mismatch': 'The two passwords differ.',
  'notice.export_code.SELF_EXPORT_UNTIL_DUE': 'Every member may export their own copy until {when}.',
  'notice.pending_core': 'Notice: this group will be dissolved at {when}; until then the owner can still cancel.',
} });
addWords({ zh: {
  'gone.title': '“{name}”已解散',
  'gone.title_unknown': '此群已解散',
  'gone.when': '解散于 {when}。',
  'gone.plain': '此群已解散，你已无法查看它的详情。',
  'gone.data': '你的数据怎么样了',
  'gone.purge': '群的消息和文件将在 {when} 之后被永久删除。在此之前群主可以恢复此群。',
  'gone.purge_keep': '群的文件将在 {when} 之后被永久删除。在此之前群主可以恢复此群。',
  'gone.purging': '群的数据正在删除。',
  'gone.purged': '群的数据已删除。',
  'gone.kept.messages.owner_read_only': '消息：以只读方式保留，仅群主可见（群主选择了保留）。',
  'gone.kept.payments.retention': '付款记录：按法定保存期限保留，期满后删除。',
  'gone.kept.bill_lines.personal_record': '你自己的账单条目保留在你的账单中：这是你的个人记录。',
  'gone.kept.everything.legal_hold': '全部数据：因法律保全，群的数据不会被删除。',
  'gone.kept.other': '保留：{what}（{why}）。',
  'gone.messages_deleted': '消息：随清除一并删除（群主选择了删除）。',
  'gone.successor': '此群在“{name}”中继续。',
  'gone.successor_link': '前往“{name}”',
  'gone.back': '返回我的群',
  'restore.title': '恢复此群',
  'restore.intro': '你可以在 {when} 之前恢复此群，恢复后成员看到的群和原来一样。',
  'restore.button': '恢复此群',
  'restore.steps_running': '请完成下方的验证，之后群会自动恢复。',
  'restore.done': '此群已恢复。',
  'scroll.earlier': '加载更早的消息',
  'scroll.loading': '正在加载更早的消息…',
  'scroll.start': '这是对话的开头。',
  'scroll.loaded': '已加载 {n} 条更早的消息。',
  'account.password_link': '修改密码',
  'account.back': '返回个人资料',
  'account.password_title': '修改密码',
  'account.password_intro': '修改密码后，你的其他会话将被退出登录。',
  'account.current': '当前密码',
  'account.new': '新密码',
  'account.again': '再次输入新密码',
  'account.save': '修改密码',
  'account.saved': '密码已修改。你的其他会话已退出登录。',
  'account.mismatch': '两次输入的新密码不一致。',
  'account.wrong_current': '当前密码不正确。',
  'account.same': '新密码必须与当前密码不同。',
  'account.too_short': '新密码至少需要 8 个字符。',
  'auth.password_again': '再次输入密码',
  'auth.mismatch': '两次输入的密码不一致。',
  'notice.export_code.SELF_EXPORT_UNTIL_DUE': '每位成员都可以在 {when} 之前导出自己的副本。',
  'notice.pending_core': '通知：此群将于 {when} 解散；在此之前群主仍可取消。',
} });

// A pending notice that carries export_code (docs/events.md) in words: when the group
// goes, that the owner can still cancel until then, and the export window from the
// code.  null for other notices (and older pending ones), which keep their own words.
export function pendingNoticeText(n) {
  if (n.stage !== 'pending' || n.export_code !== 'SELF_EXPORT_UNTIL_DUE' || !Number.isInteger(n.dissolves_at)) return null;
  const gap = language() === 'zh' ? '' : ' '; // Chinese sentences follow each other without a space
  return t('notice.pending_core', { when: when(n.dissolves_at) }) + gap +
    t('notice.export_code.SELF_EXPORT_UNTIL_DUE', { when: when(n.dissolves_at) });
}

// A member's page for a dissolved group, from the 410 problem (docs/api.md, "After a
// dissolution").  Without `gone` (the caller was never in it) only the plain words.
export async function goneView(gid, problem) {
  const g = problem?.gone;
  const parts = [];
  parts.push(h('h1', { id: 'gone-title' }, g?.name ? t('gone.title', { name: g.name }) : t('gone.title_unknown')));
  let successorName = g?.successor_name;
  if (problem?.successor && !successorName) {
    try {
      successorName = (await api.get(`/v1/groups/${enc(problem.successor)}`)).name;
    } catch {
      successorName = null;
    }
  }
  if (g) {
    parts.push(h('p', { id: 'gone-when' }, t('gone.when', { when: when(g.dissolved_at) })));
    const data = [];
    // Messages the owner kept are not deleted with the rest (the kept line below says so).
    const keeps = (g.kept || []).some((k) => k.what === 'messages');
    if (g.state === 'dissolved' && g.purge_after) data.push(t(keeps ? 'gone.purge_keep' : 'gone.purge', { when: when(g.purge_after) }));
    else if (g.state === 'purging') data.push(t('gone.purging'));
    else if (g.state === 'purged') data.push(t('gone.purged'));
    if (g.messages === 'delete') data.push(t('gone.messages_deleted'));
    for (const k of g.kept || []) {
      const key = `gone.kept.${k.what}.${k.why}`;
      data.push(t(key) !== key ? t(key) : t('gone.kept.other', { what: k.what, why: k.why }));
    }
    parts.push(h('section', { class: 'card', 'aria-labelledby': 'gone-data-title', id: 'gone-data' },
      h('h2', { id: 'gone-data-title' }, t('gone.data')),
      h('ul', {}, data.map((line) => h('li', {}, line)))));
  } else {
    parts.push(h('p', {}, t('gone.plain')));
  }
  if (problem?.successor) {
    const name = successorName || t('gone.title_unknown');
    parts.push(h('p', { id: 'gone-successor' }, t('gone.successor', { name }), t('punct.sentence'),
      h('a', { href: `#/g/${problem.successor}`, class: 'button', id: 'successor-link' }, t('gone.successor_link', { name }))));
  }
  parts.push(h('p', {}, h('a', { href: '#/groups' }, t('gone.back'))));
  document.getElementById('banner').replaceChildren(h('p', { class: 'banner gone' }, t('banner.gone')));
  return h('div', { id: 'gone' }, ...parts);
}

// The owner's Restore card while the group is `dissolved` (the purge grace), or null.
// The first try goes without a password; a 428 STEP_UP_REQUIRED shows the password
// field (the step-up of views/dissolve.js) and the next try sends it.
export async function restoreCard(gid, g, onRestored) {
  if (g.my_role !== 'owner' || g.state !== 'dissolved') return null;
  let until = null;
  try {
    until = (await api.get(`/v1/groups/${enc(gid)}/dissolution`)).grace_until ?? null;
  } catch {
    // the card still offers the restore; the server says whether it is too late
  }
  const slot = h('div');
  const steps = h('div', { 'aria-live': 'polite' });
  const btn = h('button', { type: 'submit', id: 'restore-btn' }, t('restore.button'));
  const why = h('p', { class: 'hint', id: 'restore-why', hidden: true }, t('restore.steps_running'));
  btn.setAttribute('aria-describedby', why.id);
  const form = h('form', { class: 'card', id: 'restore', 'aria-labelledby': 'restore-title' },
    h('h2', { id: 'restore-title' }, t('restore.title')),
    until ? h('p', {}, t('restore.intro', { when: when(until) })) : null, btn, why, steps, slot);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    btn.disabled = true;
    why.hidden = false;
    slot.replaceChildren();
    try {
      // Tried as it is; whatever a 428 asks (the password again, or more) becomes steps
      // (proofs.js) and the restore goes again by itself once they are done.
      await sendWithProofs(steps, null, { action: 'restore', group: gid, groupName: g.name },
        (proofs) => api.post(`/v1/groups/${enc(gid)}/restore`, proofs));
    } catch (e) {
      slot.replaceChildren(errorBox(e));
      btn.disabled = false;
      why.hidden = true;
      btn.focus();
      return;
    }
    toast(t('restore.done'));
    onRestored();
  });
  return form;
}

// Adds scroll-back to a message list: a "Load earlier messages" button before it
// (returned, to place above the list), also pressed by scrolling to the top.  Pages
// of up to 200 earlier messages are fetched with ?after=<seq> (the cursor is a seq,
// docs/api.md "Pagination") and put before the first shown one, keeping what the
// reader looks at in place.  `from` is the after= of the first page loaded (0 when it
// began at the start); render(m) makes a message's item.
export function scrollBack(list, base, from, render) {
  let floor = from; // every message after this seq is (or was) loaded
  let loading = false;
  const status = h('p', { class: 'muted small', id: 'scroll-status', role: 'status' });
  const btn = h('button', { type: 'button', class: 'link', id: 'load-earlier' }, t('scroll.earlier'));
  const box = h('div', { class: 'scroll-back' }, btn, status);
  const done = () => {
    btn.remove(); // nothing earlier: no button to press
    status.textContent = t('scroll.start');
  };
  if (floor <= 0) done();
  async function more() {
    if (loading || floor <= 0) return;
    loading = true;
    btn.disabled = true;
    status.textContent = t('scroll.loading');
    try {
      const first = Number(list.querySelector('[data-seq]')?.dataset.seq ?? floor + 1);
      let items = [];
      // Seqs may have gaps; step back until something earlier comes or the start.
      while (!items.length && floor > 0) {
        const after = Math.max(0, floor - 200);
        const page = await api.get(`${base}/messages?after=${after}&limit=200`);
        items = page.items.filter((m) => m.seq < first);
        floor = after;
      }
      const height = list.scrollHeight;
      const top = list.scrollTop;
      list.setAttribute('aria-busy', 'true'); // no announcement of the old messages
      list.prepend(...items.map(render));
      list.scrollTop = top + (list.scrollHeight - height);
      list.removeAttribute('aria-busy');
      if (floor <= 0) done();
      else status.textContent = t('scroll.loaded', { n: items.length });
    } catch (e) {
      status.replaceChildren(errorBox(e));
    } finally {
      loading = false;
      btn.disabled = false;
    }
  }
  btn.addEventListener('click', more);
  list.addEventListener('scroll', () => {
    if (list.scrollTop < 4 && list.scrollHeight > list.clientHeight) more();
  });
  // The page is attached after this returns: then show the latest messages.
  const settle = (n) => {
    if (list.isConnected) list.scrollTop = list.scrollHeight;
    else if (n > 0) requestAnimationFrame(() => settle(n - 1));
  };
  requestAnimationFrame(() => settle(60));
  return box;
}

// #/me/password: the current password and the new one twice; the server's codes in words.
export async function accountPasswordView() {
  const cur = h('input', { name: 'current-password', id: 'current-password', type: 'password', autocomplete: 'current-password', required: true });
  const pw = h('input', { name: 'new-password', id: 'account-new-password', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  const again = h('input', { name: 'new-password-again', id: 'account-new-password-again', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  const slot = h('div');
  const mismatch = h('p', { class: 'error', id: 'account-mismatch', 'aria-live': 'polite' });
  const check = () => {
    const bad = again.value !== '' && pw.value !== again.value;
    mismatch.textContent = bad ? t('account.mismatch') : '';
    again.setAttribute('aria-invalid', bad ? 'true' : 'false');
    return !bad;
  };
  pw.addEventListener('input', check);
  again.addEventListener('input', check);
  const btn = h('button', { type: 'submit', id: 'change-password' }, t('account.save'));
  const form = h('form', { class: 'card', 'aria-labelledby': 'account-password-form' },
    h('h2', { id: 'account-password-form' }, t('account.password_title')),
    field(t('account.current'), cur), field(t('account.new'), pw, t('auth.password_hint')),
    field(t('account.again'), again), mismatch, slot, btn);
  form.addEventListener('submit', busy(btn, slot, async () => {
    if (!check() || pw.value !== again.value) {
      again.focus();
      return;
    }
    try {
      await api.post('/v1/me/password', { old_password: cur.value, new_password: pw.value });
    } catch (e) {
      const f = e.problem?.field;
      const key = e.code === 'BAD_CREDENTIALS' ? 'account.wrong_current'
        : e.code === 'FIELD_INVALID' && f === 'new_password' ? (pw.value.length < 8 ? 'account.too_short' : 'account.same')
          : null;
      if (!key) throw e;
      slot.replaceChildren(h('p', { class: 'error', role: 'alert', 'data-code': e.code, id: 'account-password-error' }, t(key)));
      return;
    }
    cur.value = pw.value = again.value = '';
    toast(t('account.saved'));
    location.hash = '#/me';
  }));
  return h('div', {},
    h('h1', {}, t('account.password_title')),
    h('p', { class: 'muted' }, t('account.password_intro')),
    form,
    h('p', {}, h('a', { href: '#/me' }, t('account.back'))));
}

// The Admin menu's flag: '1' or '0' in sessionStorage once known for this session.
export const adminAllowed = () => sessionStorage.getItem('qun.admin') === '1';
export const adminKnown = () => sessionStorage.getItem('qun.admin') !== null;

// Learns whether this account has an admin page to use (GET /v1/me's roles; an org
// admin has orgs in GET /v1/orgs).  Resolves to whether it changed.
export async function refreshAdmin() {
  const before = sessionStorage.getItem('qun.admin');
  try {
    const me = await api.get('/v1/me');
    let yes = me.server_admin === true || me.compliance === true;
    if (!yes) yes = (await api.get('/v1/orgs?limit=1')).items.length > 0;
    sessionStorage.setItem('qun.admin', yes ? '1' : '0');
  } catch {
    return false;
  }
  return before !== sessionStorage.getItem('qun.admin');
}

