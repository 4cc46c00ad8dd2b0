// SPDX-License-Identifier: MIT
// A group: state and role, the dissolution notice banner, messages and state changes
// (live through live.js: server-sent events), members and roles, files and payments,
// and the owner's actions.

import { api, enc, session } from '../api.js';
import { duration, t, when } from '../i18n.js';
import { followGroup } from '../live.js';
import { fileAttachment, filesSection, releaseFiles } from './files.js';
import { paymentsSection, redPackets } from './payments.js';
import { applyRecall, recallButton, recalledItem } from './recall.js';
import { groupExportCard, selfExportCard } from './selfexport.js';
import { goneView, pendingNoticeText, restoreCard, scrollBack } from './after.js';
import { searchCard } from './search.js';
import { badge, busy, errorBox, field, h, toast } from '../ui.js';

// The dissolution notice of a system message, or null.
// A dissolution notice (a system message whose text is JSON, docs/events.md) with its
// stage ("review", "pending", "cancelled", ...), or null.  Older servers wrote the
// pending one as {"notice": "dissolution"}.
export function dissolutionNotice(msg) {
  if (msg.kind !== 'system') return null;
  try {
    const j = JSON.parse(msg.text);
    if (!j || typeof j.notice !== 'string') return null;
    if (j.notice === 'dissolution') return { ...j, stage: 'pending' };
    if (!j.notice.startsWith('dissolution.')) return null;
    return { ...j, stage: j.notice.slice('dissolution.'.length) };
  } catch {
    return null;
  }
}

// The pending notice (the banner's countdown), or null.
export function noticeOf(msg) {
  const j = dissolutionNotice(msg);
  return j && j.stage === 'pending' && Number.isInteger(j.dissolves_at) ? j : null;
}

const STAGES = ['review', 'pending', 'cancelled', 'rejected', 'expired', 'dissolved', 'restored'];

function noticeText(n, names) {
  if (!STAGES.includes(n.stage)) return t('notice.dissolution.other', { stage: n.stage });
  const pending = pendingNoticeText(n);
  if (pending) return pending;
  const who = (n.by && (names.get(n.by) || n.by_name)) || t('notice.someone');
  return t(`notice.dissolution.${n.stage}`, {
    by: who,
    when: n.dissolves_at ? when(n.dissolves_at) : '',
    until: n.restorable_until ? when(n.restorable_until) : '',
    approvals: n.approvals ?? '',
    reason: n.reason ? t('notice.reason', { reason: n.reason }) : '',
    successor: n.successor ? (n.successor_name ? t('notice.successor', { successor: n.successor_name }) : t('notice.successor_unnamed')) : '',
    messages: t(n.messages === 'delete' ? 'notice.messages.delete' : 'notice.messages.keep'),
  });
}

// The server's clock minus the browser's, in seconds: the dissolution status carries
// the server's `now` (which the test clock can move), so countdowns use server time.
export async function serverSkew(gid) {
  try {
    const s = await api.get(`/v1/groups/${enc(gid)}/dissolution`);
    return s.now - Date.now() / 1000;
  } catch {
    return 0;
  }
}

// The name shown for a person: the display name they chose, else the username.
const shownName = (m) => m.display_name || m.username;

function messageItem(m, names, gid, recall) {
  if (m.recalled) return recalledItem(m, names, h('time', { class: 'muted', datetime: new Date(m.created_at * 1000).toISOString() }, when(m.created_at)));
  const notice = dissolutionNotice(m);
  const text = notice ? noticeText(notice, names)
    : m.kind === 'system' ? t('group.system', { text: m.text }) : m.text;
  return h('li', { class: m.kind === 'system' ? 'msg system' : 'msg', 'data-seq': m.seq, 'data-author': m.author },
    h('span', { class: 'who' }, m.kind === 'system' ? 'qun'
      : (m.author_display_name || names.get(m.author) || m.author_username || t('notice.someone'))),
    h('span', { class: 'text' }, m.file ? fileAttachment(gid, m.file) : text), // a file message: its file
    h('time', { class: 'muted', datetime: new Date(m.created_at * 1000).toISOString() }, when(m.created_at)),
    recall ? recallButton(m, recall) : null);
}

export async function groupView([gid], ctx) {
  const base = `/v1/groups/${enc(gid)}`;
  let g;
  try {
    g = await api.get(base);
  } catch (e) {
    if (e.code !== 'GROUP_GONE') throw e;
    return goneView(gid, e.problem);
  }
  const isOwner = g.my_role === 'owner';
  const canManage = isOwner || g.my_role === 'admin';
  const live = g.state === 'active' || g.state === 'review' || g.state === 'pending';
  const [members, files] = await Promise.allSettled([
    api.get(`${base}/members?limit=200`), api.get(`${base}/files?limit=200`)]);
  ctx.onLeave(releaseFiles);
  // The owner of a dissolved group reads its messages; the rest answers 410: left out.
  const goneErr = (r) => r.status === 'rejected' && r.reason?.code === 'GROUP_GONE';
  const isGone = goneErr(members);
  const names = new Map(members.status === 'fulfilled' ? members.value.items.map((m) => [m.openid, shownName(m)]) : []);
  const usernames = new Map(members.status === 'fulfilled' ? members.value.items.map((m) => [m.openid, m.username]) : []);

  // ---- banner: the notice with the time left, while the group is pending ----
  const stateBadge = h('span', { id: 'group-state' }, badge(g.state));
  let notice = null;
  let skew = 0;
  const bannerEl = document.getElementById('banner');
  // The banner is a live region: it is only touched when its words change (the time
  // left shows two units, so for a long notice that is rarely), not every second.
  function paintBanner() {
    let want = null;
    if (g.state === 'pending' && notice) {
      const left = notice.dissolves_at - (Date.now() / 1000 + skew);
      want = h('p', { class: 'banner pending', id: 'notice-banner' },
        t('banner.pending', { left: duration(left), when: when(notice.dissolves_at) }));
    } else if (g.state === 'review') {
      want = h('p', { class: 'banner review', id: 'notice-banner' }, t('banner.review'));
    } else if (g.state === 'dissolved' || g.state === 'purging' || g.state === 'purged') {
      want = h('p', { class: 'banner gone' }, t('banner.gone'));
    }
    exportCard.hidden = g.state !== 'pending';
    const have = bannerEl.firstElementChild;
    if (want && have && have.className === want.className && have.textContent === want.textContent) return;
    if (want) bannerEl.replaceChildren(want);
    else bannerEl.replaceChildren();
  }
  // During the notice every member may export their own copy (views/selfexport.js).
  const exportCard = selfExportCard(gid, (fn) => ctx.onLeave(fn), g.name);
  const groupExport = isOwner && live ? groupExportCard(gid, (fn) => ctx.onLeave(fn), g.name) : null;
  const tick = setInterval(paintBanner, 1000);
  ctx.onLeave(() => clearInterval(tick));
  if (g.state === 'pending') skew = await serverSkew(gid);

  // ---- messages ----
  // The list scrolls on its own, so it takes the focus too: keyboard users scroll it.
  const msgList = h('ol', {
    class: 'messages', id: 'messages', 'aria-live': 'polite', 'aria-relevant': 'additions', tabindex: 0,
    'aria-labelledby': 'h-msg',
  });
  const empty = h('p', { class: 'muted' }, t('group.no_messages'));
  // Opening the group marks it read (POST …/read: the group list's badge and a Matrix
  // client's count follow); messages that arrive while it is open are read as well.
  let readTimer = null;
  let readUpTo = g.last_seq || 0;
  const markRead = (delay) => {
    clearTimeout(readTimer);
    readTimer = setTimeout(() => {
      if (ctx.current()) api.post(`${base}/read`, {}).catch(() => {});
    }, delay);
  };
  ctx.onLeave(() => clearTimeout(readTimer));
  // Recall and removal (views/recall.js): who may take down which message.
  const roles = new Map(members.status === 'fulfilled' ? members.value.items.map((m) => [m.openid, m.role]) : []);
  const recallOpts = { base, myRole: g.my_role, recallWindow: g.recall_window_seconds, roles, names, onDone: (m) => applyRecall(msgList, m, names) };
  function addMessages(items) {
    for (const m of items) {
      if (m.seq > readUpTo) {
        readUpTo = m.seq;
        markRead(800);
      }
      if (msgList.querySelector(`[data-seq="${m.seq}"]`)) continue;
      msgList.append(messageItem(m, names, gid, live && recallOpts));
      const n = noticeOf(m);
      if (n) notice = n;
      const d = dissolutionNotice(m);
      if (d && ['cancelled', 'rejected', 'expired', 'restored'].includes(d.stage)) notice = null;
    }
    empty.hidden = msgList.children.length > 0;
    msgList.scrollTop = msgList.scrollHeight;
    paintBanner();
  }
  let after = 0;
  let earlier = null;
  try {
    const first = await api.get(`${base}/messages?after=${Math.max(0, (g.last_seq || 0) - 200)}&limit=200`);
    addMessages(first.items);
    earlier = scrollBack(msgList, base, Math.max(0, (g.last_seq || 0) - 200), (m) => messageItem(m, names, gid, live && recallOpts));
    after = first.items.length ? first.items[first.items.length - 1].seq : Math.max(0, (g.last_seq || 0) - 200);
  } catch (e) {
    msgList.replaceWith(errorBox(e));
  }
  if (g.last_seq && live) markRead(0);
  // Red packets show in the history as cards, by time (views/payments.js).
  let follow = null; // the event stream (live.js), followed further down
  const packets = redPackets(gid, msgList, { names, live, onLeave: ctx.onLeave, streaming: () => follow?.mode() === 'events', onChange: (added) => {
    empty.hidden = msgList.children.length > 0;
    if (added) msgList.scrollTop = msgList.scrollHeight;
  } });
  await packets.refresh();
  // The group ended while the page was open: drawn again as a reload would draw it (a
  // member's page says the group is gone and what is kept; the owner's keeps the messages
  // read-only), so no composer, upload or red packet is left to fail.
  const gone = () => ctx.rerender();
  // A state event (dissolution requested, pending, cancelled, dissolved...) reloads the
  // group, so the badge and the banner follow at once.
  async function reload() {
    try {
      const fresh = await api.get(base);
      if (fresh.state === g.state) return;
      if (fresh.state === 'pending') skew = await serverSkew(gid);
      g = fresh;
      stateBadge.replaceChildren(badge(g.state));
      paintBanner();
    } catch (e) {
      if (e.code === 'GROUP_GONE') gone();
    }
  }
  // A member chose another display name: their messages and their row say it at once.
  function renamed(data) {
    const name = data.display_name || usernames.get(data.openid) || t('notice.someone');
    names.set(data.openid, name);
    for (const el of document.querySelectorAll('#group [data-author] .who, #members [data-openid] .who')) {
      const li = el.closest('[data-author], [data-openid]');
      if ((li.dataset.author || li.dataset.openid) === data.openid) el.textContent = name;
    }
  }
  // Who else is typing (member.typing; the server ends a start after 30 s, and so does
  // the page should the stop be lost), shown under the composer.
  const typingEl = h('p', { id: 'typing', class: 'muted typing', 'aria-live': 'polite' });
  const typists = new Map(); // openid -> timer
  function paintTyping() {
    const who = [...typists.keys()].map((o) => names.get(o) || usernames.get(o) || t('notice.someone'));
    typingEl.textContent = !who.length ? '' : who.length === 1 ? t('group.typing_one', { name: who[0] })
      : t('group.typing_many', { names: who.join(t('group.typing_and')) });
  }
  function typingEvent(data) {
    if (data.user === session.openid) return;
    clearTimeout(typists.get(data.user));
    if (data.typing) {
      if (data.display_name) names.set(data.user, data.display_name);
      typists.set(data.user, setTimeout(() => typingEvent({ user: data.user, typing: false }), 35000));
    } else {
      typists.delete(data.user);
    }
    paintTyping();
  }
  ctx.onLeave(() => typists.forEach((timer) => clearTimeout(timer)));
  if (live) {
    follow = followGroup(gid, after, {
      onMessages: (items) => {
        for (const m of items) if (typists.has(m.author)) typingEvent({ user: m.author, typing: false });
        addMessages(items);
      },
      onGroup: (type, data) => (type === 'message.recalled' ? applyRecall(msgList, data, names)
        : type === 'member.typing' ? typingEvent(data)
        : type === 'payment.created' || type === 'payment.claimed' ? packets.refresh()
        : type === 'member.display_name_changed' ? renamed(data)
          : type === 'group.dissolved' || type === 'group.purged' ? gone() : reload()),
      onError: (e) => e.code === 'GROUP_GONE' && gone(),
    });
    ctx.onLeave(follow);
  }
  const text = h('input', { name: 'message', maxlength: 4000, autocomplete: 'off', required: true });
  const sendSlot = h('div');
  const send = h('button', { type: 'submit', id: 'send' }, t('group.send'));
  const msgForm = h('form', { class: 'row' }, field(t('group.message'), text), send, sendSlot);
  // Typing is told while the person types, at most every 5 s (a start lasts 30 s on the
  // server), and stopped when the field empties, on send and on leaving the page.
  let typingSent = 0;
  const tellTyping = (on) => {
    if (on === (typingSent > 0) && (!on || Date.now() - typingSent < 5000)) return;
    typingSent = on ? Date.now() : 0;
    api.put(`${base}/typing`, { typing: on }).catch(() => {});
  };
  text.addEventListener('input', () => tellTyping(text.value.trim() !== ''));
  ctx.onLeave(() => typingSent && tellTyping(false));
  msgForm.addEventListener('submit', () => tellTyping(false));
  msgForm.addEventListener('submit', busy(send, sendSlot, async () => {
    const m = await api.post(`${base}/messages`, { text: text.value });
    addMessages([m]);
    text.value = '';
    text.focus();
  }));

  // ---- without the event stream, the group's state is polled ----
  const refresh = setInterval(() => {
    if (g.state === 'dissolved') clearInterval(refresh);
    else if (!follow || follow.mode() !== 'events') reload();
  }, 5000);
  ctx.onLeave(() => clearInterval(refresh));

  // ---- members ----
  let memberSection;
  if (members.status === 'fulfilled') {
    const ul = h('ul', { class: 'list', id: 'members' }, members.value.items.map((m) =>
      h('li', { 'data-openid': m.openid }, h('span', { class: 'who', title: m.username }, shownName(m)), ' ',
        h('span', { class: `role role-${m.role}` }, t('role.' + m.role)),
        m.minor ? ' ⚑' : '')));
    let add = null;
    if (canManage && g.state === 'active') {
      const who = h('input', { name: 'member-username', required: true, maxlength: 64, autocomplete: 'off' });
      const role = h('select', { name: 'member-role' }, ['member', 'admin'].map((r) => h('option', { value: r }, t('role.' + r))));
      const slot = h('div');
      const btn = h('button', { type: 'submit', id: 'add-member' }, t('group.add'));
      add = h('form', { class: 'row', 'aria-label': t('group.add_member') },
        field(t('group.invite_username'), who), isOwner ? field(t('group.role'), role) : null, btn, slot);
      add.addEventListener('submit', busy(btn, slot, async () => {
        const body = { username: who.value.trim() };
        if (isOwner) body.role = role.value;
        const m = await api.post(`${base}/members`, body);
        names.set(m.openid, shownName(m));
        usernames.set(m.openid, m.username);
        ul.append(h('li', { 'data-openid': m.openid }, h('span', { class: 'who', title: m.username }, shownName(m)), ' ',
          h('span', { class: `role role-${m.role}` }, t('role.' + m.role))));
        who.value = '';
        toast(t('group.member_added'));
      }));
    }
    // Inviting by username: the person joins when they accept (and where the policy asks
    // for consent, this is the only way in).
    let invite = null;
    if (canManage && g.state === 'active') {
      const who = h('input', { name: 'invite-username', required: true, maxlength: 64, autocomplete: 'off' });
      const role = h('select', { name: 'invite-role' }, ['member', 'admin'].map((r) => h('option', { value: r }, t('role.' + r))));
      const slot = h('div');
      const btn = h('button', { type: 'submit', id: 'invite-member' }, t('group.invite_send'));
      invite = h('form', { class: 'row', 'aria-label': t('group.invite') },
        field(t('group.invite_username'), who), isOwner ? field(t('group.role'), role) : null, btn, slot);
      invite.addEventListener('submit', busy(btn, slot, async () => {
        const body = { username: who.value.trim() };
        if (isOwner) body.role = role.value;
        const inv = await api.post(`${base}/invitations`, body);
        who.value = '';
        toast(t('group.invited', { name: inv.invitee_username }));
      }));
    }
    memberSection = [ul, add, invite && h('h3', {}, t('group.invite')), invite];
  } else {
    memberSection = errorBox(members.reason);
  }

  // ---- files (views/files.js); an upload's file message shows at once ----
  const fileSection = files.status === 'fulfilled'
    ? filesSection(gid, files.value.items, { live, names, onUploaded: async (f) => {
      if (!f.message_seq) return;
      const page = await api.get(`${base}/messages?after=${f.message_seq - 1}&limit=1`);
      addMessages(page.items);
    } })
    : errorBox(files.reason);

  // ---- payments (views/payments.js): send a red packet, the bill ----
  const paySection = paymentsSection(gid, { live, onSent: () => packets.refresh() });

  // ---- actions ----
  const actions = h('ul', { class: 'actions' },
    isOwner && g.state === 'active' ? h('li', {}, h('a', { class: 'button danger', href: `#/g/${gid}/dissolve`, id: 'dissolve-link' }, t('group.dissolve'))) : null,
    g.state !== 'active' || isOwner ? h('li', {}, h('a', { class: 'button', href: `#/g/${gid}/dissolution`, id: 'status-link' }, t('group.dissolution'))) : null,
    isOwner && g.state === 'active' || g.transfer ? h('li', {}, h('a', { class: 'button', href: `#/g/${gid}/transfer`, id: 'transfer-link' }, t('group.transfer'))) : null,
    canManage && g.state === 'active' ? h('li', {}, h('a', { class: 'button', href: `#/g/${gid}/remove`, id: 'remove-link' }, t('group.remove_members'))) : null,
    h('li', {}, h('a', { class: 'button', href: `#/g/${gid}/audit`, id: 'audit-link' }, t('group.audit'))));

  paintBanner();
  const restore = await restoreCard(gid, g, () => ctx.rerender());
  return h('div', { id: 'group', 'data-gid': gid, 'data-live': follow ? 'on' : 'off' },
    h('h1', { id: 'group-name' }, g.name),
    h('p', { class: 'meta' }, t('group.state') + t('punct.colon'), stateBadge,
      ` · ${t('group.your_role')}${t('punct.colon')}${t('role.' + g.my_role)} · ${t('group.kind')}${t('punct.colon')}${t('kind.' + g.kind)}`),
    actions,
    restore,
    h('div', { class: 'grid' },
      exportCard,
      h('section', { 'aria-labelledby': 'h-msg', class: 'card wide' }, h('h2', { id: 'h-msg' }, t('group.messages')), earlier, empty, msgList, live ? msgForm : null, live ? typingEl : null),
      // Right under the messages it searches: on a phone the cards stack, and a person
      // looking for a message should not scroll past members, files and red packets.
      g.state === 'purged' ? null : searchCard(gid, names),
      isGone ? null : h('section', { 'aria-labelledby': 'h-mem', class: 'card' }, h('h2', { id: 'h-mem' }, t('group.members')), memberSection),
      goneErr(files) ? null : h('section', { 'aria-labelledby': 'h-files', class: 'card' }, h('h2', { id: 'h-files' }, t('group.files')), fileSection),
      isGone ? null : h('section', { 'aria-labelledby': 'h-pay', class: 'card' }, h('h2', { id: 'h-pay' }, t('group.payments')), paySection),
      groupExport));
}
