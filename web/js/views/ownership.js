// SPDX-License-Identifier: MIT
// Two destructive actions of a group besides its dissolution, each previewed first and
// then confirmed with whatever verification the preview (or a 428) names, through
// proofs.js:
//   transferView  #/g/<id>/transfer — the owner picks a member by name, reads the
//                 preview (who becomes owner, what the owner becomes, what must be
//                 verified), completes the steps and the offer is made; while it is
//                 open the owner may withdraw it, and the member it is made to sees it
//                 here (the inbox's transfer.offered links here) and accepts or declines;
//   removeView    #/g/<id>/remove — an owner or admin ticks members by name, reads the
//                 preview's impact (how many, admins among them, members left, whether
//                 the 24 h count asks for verification), and removes them all at once.
// People are always named (display name, else username), never by openid.

import { api, enc, session } from '../api.js';
import { addWords, t, when } from '../i18n.js';
import { busy, errorBox, field, h, requirementLines, toast } from '../ui.js';
import { sendWithProofs } from '../proofs.js';

addWords({ en: {
  'transfer.title': 'Transfer ownership of “{name}”',
  'transfer.intro': 'The member you choose becomes the owner once they accept. You then become an admin of the group.',
  'transfer.to': 'New owner',
  'transfer.to_hint': 'Only members of the group can be chosen.',
  'transfer.nobody': 'Nobody else is in this group yet: add a member first.',
  'transfer.preview': 'Preview the transfer',
  'transfer.preview_title': 'What happens',
  'transfer.preview_line': '{to} is offered the ownership of “{group}”. Until {to} accepts, nothing changes and you can withdraw the offer.',
  'transfer.after_line': 'Once accepted, {to} is the owner and you are an admin.',
  'transfer.requirements': 'Verification needed',
  'transfer.none_needed': 'No verification is needed.',
  'transfer.offer': 'Offer the ownership',
  'transfer.offered': 'The offer is made. {to} is told and can accept or decline it.',
  'transfer.pending_owner': 'You offered the ownership to {to} on {when}. Nothing changes until {to} accepts.',
  'transfer.withdraw': 'Withdraw the offer',
  'transfer.withdrawn': 'The offer is withdrawn.',
  'transfer.pending_recipient': '{from} offers you the ownership of “{group}” (since {when}).',
  'transfer.recipient_after': 'If you accept, you become the owner and {from} becomes an admin. If you decline, nothing changes.',
  'transfer.accept': 'Accept the ownership',
  'transfer.decline': 'Decline',
  'transfer.accepted': 'You are now the owner of “{group}”.',
  'transfer.declined': 'You declined the offer.',
  'transfer.not_owner': 'Only the owner of the group can transfer its ownership, and no offer is waiting for you here.',
  'transfer.not_active': 'This group is not active: its ownership cannot change now.',
  'transfer.retry_at': 'You can try again from {when}.',
  'transfer.back': 'Back to the group',
  'transfer.steps_running': 'Complete the verification below: the offer is then made by itself.',
  'transfer.pick_first': 'Choose the new owner first.',
  'remove.title': 'Remove members from “{name}”',
  'remove.intro': 'Tick the members to remove. They lose access to the group at once; they can be added again later.',
  'remove.legend': 'Members',
  'remove.role': '{name} · {role}',
  'remove.nobody': 'There is nobody you can remove here.',
  'remove.only_members': 'Admins can remove members only; the owner removes admins.',
  'remove.reason': 'Reason (optional, told to the members removed)',
  'remove.preview': 'Preview the removal',
  'remove.pick_first': 'Tick at least one member first.',
  'remove.preview_title': 'What happens',
  'remove.count': '{n} members will be removed.',
  'remove.count.one': '{n} member will be removed.',
  'remove.count_admins': '{n} members will be removed, {admins} of them admins.',
  'remove.count_admins.one': '{n} member will be removed: an admin.',
  'remove.after': 'The group will have {n} members left.',
  'remove.after.one': 'The group will have {n} member left.',
  'remove.recent': 'You removed {n} members of this group in the last 24 hours.',
  'remove.needs_verification': 'Removing more than 10 members in 24 hours needs verification:',
  'remove.no_verification': 'No verification is needed for this removal.',
  'remove.go': 'Remove {n} members',
  'remove.go.one': 'Remove {n} member',
  'remove.done': '{n} members were removed.',
  'remove.done.one': '{n} member was removed.',
  'remove.steps_running': 'Complete the verification below: the members are then removed by itself.',
  'remove.back': 'Back to the group',
  'remove.not_admin': 'Only the owner and admins can remove members.',
} });
addWords({ zh: {
  'transfer.title': '转让“{name}”的群主',
  'transfer.intro': '你选择的成员接受后即成为群主，你随后成为本群管理员。',
  'transfer.to': '新群主',
  'transfer.to_hint': '只能选择本群成员。',
  'transfer.nobody': '本群还没有其他成员：请先添加成员。',
  'transfer.preview': '预览转让',
  'transfer.preview_title': '将会发生什么',
  'transfer.preview_line': '将向 {to} 发出“{group}”的群主转让邀请。{to} 接受之前一切不变，你也可以撤回。',
  'transfer.after_line': '接受后，{to} 成为群主，你成为管理员。',
  'transfer.requirements': '需要的验证',
  'transfer.none_needed': '无需验证。',
  'transfer.offer': '发出群主转让',
  'transfer.offered': '已发出转让。{to} 会收到通知，可以接受或拒绝。',
  'transfer.pending_owner': '你已于 {when} 向 {to} 发出群主转让。{to} 接受之前一切不变。',
  'transfer.withdraw': '撤回转让',
  'transfer.withdrawn': '已撤回转让。',
  'transfer.pending_recipient': '{from} 想把“{group}”的群主转让给你（{when} 发出）。',
  'transfer.recipient_after': '接受后你成为群主，{from} 成为管理员。拒绝则一切不变。',
  'transfer.accept': '接受群主身份',
  'transfer.decline': '拒绝',
  'transfer.accepted': '你现在是“{group}”的群主。',
  'transfer.declined': '你已拒绝此转让。',
  'transfer.not_owner': '只有群主可以转让群主身份，本群也没有等待你回复的转让。',
  'transfer.not_active': '此群不是活跃状态，目前不能转让群主。',
  'transfer.retry_at': '你可以在 {when} 之后再试。',
  'transfer.back': '返回群聊',
  'transfer.steps_running': '请完成下方的验证，之后会自动发出转让。',
  'transfer.pick_first': '请先选择新群主。',
  'remove.title': '从“{name}”移除成员',
  'remove.intro': '勾选要移除的成员。他们会立即失去本群的访问权限，之后仍可重新添加。',
  'remove.legend': '成员',
  'remove.role': '{name} · {role}',
  'remove.nobody': '这里没有你可以移除的成员。',
  'remove.only_members': '管理员只能移除普通成员；管理员由群主移除。',
  'remove.reason': '理由（可选，会告知被移除的成员）',
  'remove.preview': '预览移除',
  'remove.pick_first': '请至少勾选一位成员。',
  'remove.preview_title': '将会发生什么',
  'remove.count': '将移除 {n} 位成员。',
  'remove.count_admins': '将移除 {n} 位成员，其中管理员 {admins} 位。',
  'remove.after': '本群将剩下 {n} 位成员。',
  'remove.recent': '过去 24 小时内你已从本群移除 {n} 位成员。',
  'remove.needs_verification': '24 小时内移除超过 10 位成员需要验证：',
  'remove.no_verification': '此次移除无需验证。',
  'remove.go': '移除 {n} 位成员',
  'remove.done': '已移除 {n} 位成员。',
  'remove.steps_running': '请完成下方的验证，之后会自动移除这些成员。',
  'remove.back': '返回群聊',
  'remove.not_admin': '只有群主和管理员可以移除成员。',
} });

const nameOf = (m) => m.display_name || m.username;
const named = (who, username) => who || username;

async function membersOf(base) {
  const out = [];
  let after = null;
  for (let i = 0; i < 20; i++) {
    const page = await api.get(`${base}/members?limit=200${after ? `&after=${enc(after)}` : ''}`);
    out.push(...page.items);
    if (!page.next_cursor) break;
    after = page.next_cursor;
  }
  return out;
}

// A refusal with the time it can be tried again (SESSION_TOO_NEW and the caps) says when.
function refusal(e) {
  const box = errorBox(e);
  const at = e.problem?.retry_at;
  return Number.isInteger(at) ? h('div', {}, box, h('p', { id: 'retry-at' }, t('transfer.retry_at', { when: when(at) }))) : box;
}

function requirementList(reqs, id) {
  const lines = requirementLines(reqs);
  return h('ul', { id }, (lines ?? [t('req.unexpected')]).map((l) => h('li', {}, l)));
}

// The preview's confirm form: its lines, a button that runs the verification steps and
// the action (send(proofs), proofs.js sendWithProofs), then toasts done() and draws the
// page again.  While the steps run, `lock(true)` freezes what the preview was made for
// and the button says why it waits; a refusal is shown and the form goes back to the
// preview, whose token may be spent (a new preview starts over).
function confirmForm({ id, label, waiting, lines, reqs, preview, action, lock, send, done, back, ctx }) {
  const go = h('button', { type: 'submit', class: 'danger', id: `${id}-go` }, label);
  const why = h('p', { class: 'hint', id: `${id}-go-why`, hidden: true }, waiting);
  go.setAttribute('aria-describedby', why.id);
  const steps = h('div', { 'aria-live': 'polite' });
  const slot = h('div');
  const card = h('form', { class: 'card confirm', id: `${id}-preview-card` }, lines, go, why, steps, slot);
  card.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    go.disabled = true;
    why.hidden = false;
    lock(true);
    slot.replaceChildren();
    const opts = {
      action, group: preview.group, digest: preview.params_digest, groupName: preview.name, token: preview.confirmation_token, ctx,
      have: { confirmation_token: preview.confirmation_token }, // the request always carries the preview's token
    };
    try {
      const out = await sendWithProofs(steps, reqs, opts, send);
      if (!ctx.current()) return;
      toast(done(out));
      ctx.rerender();
    } catch (e) {
      if (!ctx.current()) return;
      slot.replaceChildren(h('div', {}, refusal(e), e.code === 'DEVICE_NOT_TRUSTED'
        ? h('p', {}, h('a', { href: '#/me/security' }, t('steps.passkey.setup_link'))) : null));
      go.hidden = true;
      why.hidden = true;
      lock(false);
      back.focus();
    }
  });
  setTimeout(() => go.focus(), 0);
  return card;
}

export async function transferView([gid], ctx) {
  const base = `/v1/groups/${enc(gid)}`;
  const g = await api.get(base);
  const back = h('p', {}, h('a', { href: `#/g/${enc(gid)}` }, t('transfer.back')));
  const page = (...body) => h('div', {}, h('h1', {}, t('transfer.title', { name: g.name })), ...body, back);
  const offer = g.transfer;
  if (offer && offer.to === session.openid) return page(recipientCard(gid, g, offer));
  if (g.my_role !== 'owner') return page(h('p', { id: 'transfer-not-owner' }, t('transfer.not_owner')));
  if (g.state !== 'active') return page(h('p', { id: 'transfer-not-active' }, t('transfer.not_active')));
  if (offer) return page(pendingCard(gid, offer, ctx));

  const others = (await membersOf(base)).filter((m) => m.openid !== session.openid);
  if (!others.length) return page(h('p', { id: 'transfer-nobody' }, t('transfer.nobody')));
  const select = h('select', { name: 'to', id: 'transfer-to' },
    h('option', { value: '' }, '—'),
    others.map((m) => h('option', { value: m.openid }, m.display_name ? t('name.with_username', { name: m.display_name, username: m.username }) : m.username)));
  const previewBtn = h('button', { type: 'submit', id: 'transfer-preview', disabled: true, 'aria-describedby': 'transfer-pick-why' }, t('transfer.preview'));
  const pickWhy = h('p', { class: 'hint', id: 'transfer-pick-why' }, t('transfer.pick_first'));
  const errSlot = h('div');
  const previewSlot = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'card' }, h('p', {}, t('transfer.intro')),
    field(t('transfer.to'), select, t('transfer.to_hint')), previewBtn, pickWhy, errSlot);
  select.addEventListener('change', () => {
    previewBtn.disabled = !select.value;
    pickWhy.hidden = !!select.value;
    previewSlot.replaceChildren(); // a preview is bound to the member it names
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!select.value) return;
    const to = others.find((m) => m.openid === select.value);
    previewBtn.disabled = true;
    errSlot.replaceChildren();
    try {
      const p = await api.post(`${base}/transfer/preview`, { to: to.openid });
      previewSlot.replaceChildren(confirmCard(p, to));
    } catch (e) {
      errSlot.replaceChildren(refusal(e)); // a refusal with a retry time says when
    } finally {
      previewBtn.disabled = !select.value;
    }
  });

  function confirmCard(p, to) {
    const toName = nameOf(to);
    return confirmForm({
      id: 'transfer', label: t('transfer.offer'), waiting: t('transfer.steps_running'), preview: p, action: 'transfer',
      reqs: p.requirements, ctx, back: previewBtn,
      lines: [
        h('h2', {}, t('transfer.preview_title')),
        h('p', { id: 'transfer-line' }, t('transfer.preview_line', { to: toName, group: p.name })),
        h('p', {}, t('transfer.after_line', { to: toName })),
        h('h3', {}, t('transfer.requirements')),
        Array.isArray(p.requirements) && !p.requirements.length
          ? h('p', { id: 'transfer-requirements' }, t('transfer.none_needed'))
          : requirementList(p.requirements, 'transfer-requirements')],
      lock: (on) => { select.disabled = on; },
      send: (proofs) => api.post(`${base}/transfer`, { to: to.openid, ...proofs }),
      done: () => t('transfer.offered', { to: toName }),
    });
  }

  return page(form, previewSlot);
}

function pendingCard(gid, offer, ctx) {
  const toName = named(offer.to_display_name, offer.to_username);
  const slot = h('div');
  const btn = h('button', { type: 'button', class: 'danger', id: 'transfer-withdraw' }, t('transfer.withdraw'));
  btn.addEventListener('click', busy(btn, slot, async () => {
    await api.del(`/v1/groups/${enc(gid)}/transfer`);
    toast(t('transfer.withdrawn'));
    ctx.rerender();
  }));
  return h('div', { class: 'card', id: 'transfer-pending' },
    h('p', {}, t('transfer.pending_owner', { to: toName, when: when(offer.created_at) })), btn, slot);
}

function recipientCard(gid, g, offer) {
  const fromName = named(offer.from_display_name, offer.from_username);
  const slot = h('div');
  const steps = h('div', { 'aria-live': 'polite' });
  const accept = h('button', { type: 'button', id: 'transfer-accept' }, t('transfer.accept'));
  const decline = h('button', { type: 'button', class: 'danger', id: 'transfer-decline' }, t('transfer.decline'));
  const base = `/v1/groups/${enc(gid)}/transfer`;
  accept.addEventListener('click', async () => {
    accept.disabled = decline.disabled = true;
    slot.replaceChildren();
    try {
      // Accepting asks no proof today; should the server ask one (a 428), its steps show.
      await sendWithProofs(steps, null, { action: 'transfer', group: gid, groupName: g.name },
        (proofs) => api.post(`${base}/accept`, proofs));
      toast(t('transfer.accepted', { group: g.name }));
      location.hash = `#/g/${gid}`;
    } catch (e) {
      slot.replaceChildren(refusal(e));
      accept.disabled = decline.disabled = false;
    }
  });
  decline.addEventListener('click', busy(decline, slot, async () => {
    await api.post(`${base}/decline`, {});
    toast(t('transfer.declined'));
    location.hash = `#/g/${gid}`;
  }));
  return h('div', { class: 'card', id: 'transfer-offer' },
    h('p', { id: 'transfer-offer-line' }, t('transfer.pending_recipient', { from: fromName, group: g.name, when: when(offer.created_at) })),
    h('p', {}, t('transfer.recipient_after', { from: fromName })),
    h('div', { class: 'row' }, accept, decline), steps, slot);
}

export async function removeView([gid], ctx) {
  const base = `/v1/groups/${enc(gid)}`;
  const g = await api.get(base);
  const back = h('p', {}, h('a', { href: `#/g/${enc(gid)}` }, t('remove.back')));
  const page = (...body) => h('div', {}, h('h1', {}, t('remove.title', { name: g.name })), ...body, back);
  if (g.my_role !== 'owner' && g.my_role !== 'admin') return page(h('p', { id: 'remove-not-admin' }, t('remove.not_admin')));
  if (g.state !== 'active') return page(h('p', { id: 'remove-not-active' }, t('transfer.not_active')));
  // The owner is never removed; an admin removes plain members only.
  const removable = (await membersOf(base)).filter((m) => m.openid !== session.openid && m.role !== 'owner'
    && (g.my_role === 'owner' || m.role === 'member'));
  if (!removable.length) return page(h('p', { id: 'remove-nobody' }, t('remove.nobody')));
  const boxes = removable.map((m) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', name: 'member', value: m.openid }), ' ',
    t('remove.role', { name: m.display_name ? t('name.with_username', { name: m.display_name, username: m.username }) : m.username, role: t('role.' + m.role) })));
  const reason = h('textarea', { name: 'reason', id: 'remove-reason', rows: 2, maxlength: 500 });
  const previewBtn = h('button', { type: 'submit', id: 'remove-preview', disabled: true, 'aria-describedby': 'remove-pick-why' }, t('remove.preview'));
  const pickWhy = h('p', { class: 'hint', id: 'remove-pick-why' }, t('remove.pick_first'));
  const errSlot = h('div');
  const previewSlot = h('div', { 'aria-live': 'polite' });
  const list = h('fieldset', { class: 'choice members-pick', id: 'remove-members' }, h('legend', {}, t('remove.legend')), boxes);
  const form = h('form', { class: 'card' }, h('p', {}, t('remove.intro')),
    g.my_role === 'admin' ? h('p', { class: 'hint' }, t('remove.only_members')) : null,
    list, field(t('remove.reason'), reason), previewBtn, pickWhy, errSlot);
  const chosen = () => [...list.querySelectorAll('input[name=member]:checked')].map((i) => i.value);
  list.addEventListener('change', () => {
    const n = chosen().length;
    previewBtn.disabled = n === 0;
    pickWhy.hidden = n > 0;
    previewSlot.replaceChildren(); // the preview is bound to the members it names
  });
  form.addEventListener('submit', busy(previewBtn, errSlot, async () => {
    const openids = chosen();
    if (!openids.length) return;
    const p = await api.post(`${base}/members/remove/preview`, { openids });
    previewSlot.replaceChildren(confirmCard(p, openids));
  }));

  function confirmCard(p, openids) {
    const body = () => (reason.value.trim() ? { openids, reason: reason.value.trim() } : { openids });
    return confirmForm({
      id: 'remove', label: t('remove.go', { n: p.count }), waiting: t('remove.steps_running'), preview: p,
      action: 'bulk_remove', reqs: p.verification_required ? p.requirements : null, ctx, back: previewBtn,
      lines: [
        h('h2', {}, t('remove.preview_title')),
        h('ul', { id: 'remove-impact' },
          h('li', {}, t(p.admins ? 'remove.count_admins' : 'remove.count', { n: p.count, admins: p.admins })),
          h('li', {}, t('remove.after', { n: p.members_after })),
          p.removed_last_day ? h('li', {}, t('remove.recent', { n: p.removed_last_day })) : null),
        p.verification_required
          ? [h('p', {}, t('remove.needs_verification')), requirementList(p.requirements, 'remove-requirements')]
          : h('p', { id: 'remove-requirements' }, t('remove.no_verification'))],
      lock: (on) => { list.disabled = on; reason.readOnly = on; },
      send: (proofs) => api.post(`${base}/members/remove`, { ...body(), ...proofs }),
      done: (out) => t('remove.done', { n: out.removed }),
    });
  }

  return page(form, previewSlot);
}
