// SPDX-License-Identifier: MIT
// My groups (with the create form) and the profile page (which shows the openid
// others need to add you to a group).

import { api, enc, session } from '../api.js';
import { t } from '../i18n.js';
import { badge, busy, field, h, toast } from '../ui.js';

const KINDS = ['standard', 'enterprise', 'education', 'finance', 'cross_border'];

// The caller's pending invitations, each with Accept and Decline; null when none.
function invitationsCard(items) {
  if (!items.length) return null;
  const ul = h('ul', { class: 'list', id: 'invitations' });
  for (const inv of items) {
    const slot = h('div');
    const yes = h('button', { type: 'button', class: 'inv-accept' }, t('inv.accept'));
    const no = h('button', { type: 'button', class: 'inv-decline button' }, t('inv.decline'));
    const li = h('li', { 'data-invitation': inv.id },
      h('span', {}, t('inv.item', { by: inv.inviter_username, group: inv.group_name, role: t('role.' + inv.role) })),
      ' ', h('span', { class: 'row' }, yes, no), slot);
    yes.addEventListener('click', busy(yes, slot, async () => {
      await api.post(`/v1/invitations/${enc(inv.id)}/accept`, {});
      toast(t('inv.joined', { group: inv.group_name }));
      location.hash = `#/g/${inv.group}`;
    }));
    no.addEventListener('click', busy(no, slot, async () => {
      await api.post(`/v1/invitations/${enc(inv.id)}/decline`, {});
      li.remove();
      toast(t('inv.declined', { group: inv.group_name }));
    }));
    ul.append(li);
  }
  return h('section', { class: 'card', 'aria-labelledby': 'inv-title' }, h('h2', { id: 'inv-title' }, t('inv.title')), ul);
}

export async function groupsView() {
  const [page, invitations] = await Promise.all([api.get('/v1/groups?limit=200'), api.get('/v1/me/invitations')]);
  const list = page.items.length
    ? h('ul', { class: 'list', id: 'group-list' }, page.items.map((g) =>
      h('li', {},
        h('a', { href: `#/g/${g.id}`, class: 'group-link' }, g.name),
        ' ', badge(g.state),
        h('span', { class: 'muted' }, ` ${t('kind.' + g.kind)} · ${t('role.' + g.my_role)} · ${t('groups.members_n', { n: g.member_count })}`))))
    : h('p', { class: 'muted' }, t('groups.none'));

  const name = h('input', { name: 'group-name', required: true, maxlength: 128 });
  const kind = h('select', { name: 'group-kind' }, KINDS.map((k) => h('option', { value: k }, t('kind.' + k))));
  const org = h('input', { name: 'group-org', maxlength: 64 });
  const slot = h('div');
  const btn = h('button', { type: 'submit', id: 'create-group' }, t('groups.create'));
  const form = h('form', { class: 'card', 'aria-labelledby': 'create-title' },
    h('h2', { id: 'create-title' }, t('groups.create')),
    field(t('groups.name'), name), field(t('groups.kind'), kind), field(t('groups.org'), org), slot, btn);
  form.addEventListener('submit', busy(btn, slot, async () => {
    const body = { name: name.value.trim(), kind: kind.value };
    if (org.value.trim()) body.org = org.value.trim();
    const g = await api.post('/v1/groups', body);
    toast(t('groups.created', { name: g.name }));
    location.hash = `#/g/${g.id}`;
  }));
  return h('div', {}, h('h1', {}, t('groups.title')), invitationsCard(invitations.items), list, form);
}

export async function profileView() {
  const me = await api.get('/v1/me');
  const openid = h('code', { id: 'my-openid' }, me.openid);
  const copy = h('button', {
    type: 'button', onclick: async () => {
      try {
        await navigator.clipboard.writeText(me.openid);
        toast(t('profile.copied'));
      } catch {
        getSelection().selectAllChildren(openid);
      }
    },
  }, t('profile.copy'));
  return h('div', {},
    h('h1', {}, t('profile.title')),
    h('dl', { class: 'card' },
      h('dt', {}, t('auth.username')), h('dd', { id: 'my-username' }, me.username || session.username),
      h('dt', {}, t('profile.openid')), h('dd', {}, openid, ' ', copy)));
}
