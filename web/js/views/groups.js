// SPDX-License-Identifier: MIT
// My groups (with the create form) and the profile page (which shows the openid
// others need to add you to a group, and sets the display name others see).

import { api, enc, session } from '../api.js';
import { followAll } from '../live.js';
import { t } from '../i18n.js';
import { badge, busy, field, h, toast } from '../ui.js';

const KINDS = ['standard', 'enterprise', 'education', 'finance', 'cross_border'];
// Events that carry a group's new `state` (docs/events.md).
const STATE_EVENTS = ['dissolution.requested', 'dissolution.pending', 'dissolution.approved', 'dissolution.cancelled',
  'dissolution.rejected', 'dissolution.expired', 'group.dissolved', 'group.restored'];

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

// A group's unread badge: its count, as text a screen reader reads ("3 unread").
function setUnread(el, n) {
  el.dataset.unread = String(n);
  el.hidden = !(n > 0);
  el.textContent = n > 0 ? t('groups.unread', { n: n > 999 ? '999+' : n }) : '';
}

export async function groupsView(_args, ctx) {
  const [page, invitations, orgs] = await Promise.all([api.get('/v1/groups?limit=200'), api.get('/v1/me/invitations'),
    api.get('/v1/orgs?limit=200').then((o) => o.items, () => [])]);
  const unread = new Map(); // group id -> its badge
  const states = new Map(); // group id -> its state badge (follows dissolution events live)
  const list = page.items.length
    ? h('ul', { class: 'list', id: 'group-list' }, page.items.map((g) => {
      const count = h('span', { class: 'unread' });
      setUnread(count, g.unread || 0);
      unread.set(g.id, count);
      return h('li', { 'data-group': g.id },
        h('a', { href: `#/g/${g.id}`, class: 'group-link' }, g.name),
        ' ', count, ' ', states.set(g.id, badge(g.state)).get(g.id),
        h('span', { class: 'muted' }, ` ${t('kind.' + g.kind)} · ${t('role.' + g.my_role)} · ${t('groups.members_n', { n: g.member_count })}`));
    }))
    : h('p', { class: 'muted' }, t('groups.none'));
  // Counts move live: another member's message raises its group's badge; a mark read
  // on another device (receipt.read of our own) and each (re)opening of the stream
  // reload the counts.
  const reload = async () => {
    try {
      for (const g of (await api.get('/v1/groups?limit=200')).items) {
        const el = unread.get(g.id);
        if (el) setUnread(el, g.unread || 0);
      }
    } catch {
      // the next event or visit tries again
    }
  };
  if (ctx && unread.size) {
    ctx.onLeave(followAll(['message.created', 'receipt.read', ...STATE_EVENTS], {
      onEvent: (type, data) => {
        if (STATE_EVENTS.includes(type) && typeof data.state === 'string' && states.has(data.group)) {
          const fresh = badge(data.state); // a cancel clears "pending" in every open list
          states.get(data.group).replaceWith(fresh);
          states.set(data.group, fresh);
          return;
        }
        const el = unread.get(data.group);
        if (!el) return;
        if (type === 'message.created' && data.author !== session.openid) setUnread(el, Number(el.dataset.unread) + 1);
        else if (type === 'receipt.read' && data.user === session.openid) reload();
      },
      onOpen: () => {
        list.dataset.live = 'on';
        reload();
      },
    }));
  }

  const name = h('input', { name: 'group-name', required: true, maxlength: 128 });
  const kind = h('select', { name: 'group-kind' }, KINDS.map((k) => h('option', { value: k }, t('kind.' + k))));
  // Enterprise and education groups belong to an organization: one the person
  // administers, chosen by its name (never typed as an id).
  const org = h('select', { name: 'group-org', id: 'group-org' }, orgs.map((o) => h('option', { value: o.id }, o.name)));
  const orgField = h('div', { id: 'group-org-field' },
    orgs.length ? field(t('groups.org'), org) : h('p', { class: 'hint', id: 'group-org-none' }, t('groups.org_none')));
  const needsOrg = () => kind.value === 'enterprise' || kind.value === 'education';
  const showOrg = () => { orgField.hidden = !needsOrg(); };
  kind.addEventListener('change', showOrg);
  showOrg();
  const slot = h('div');
  const btn = h('button', { type: 'submit', id: 'create-group' }, t('groups.create'));
  const form = h('form', { class: 'card', 'aria-labelledby': 'create-title' },
    h('h2', { id: 'create-title' }, t('groups.create')),
    field(t('groups.name'), name), field(t('groups.kind'), kind), orgField, slot, btn);
  form.addEventListener('submit', busy(btn, slot, async () => {
    const body = { name: name.value.trim(), kind: kind.value };
    if (needsOrg() && org.value) body.org = org.value;
    const g = await api.post('/v1/groups', body);
    toast(t('groups.created', { name: g.name }));
    location.hash = `#/g/${g.id}`;
  }));
  return h('div', {}, h('h1', {}, t('groups.title')), invitationsCard(invitations.items), list, form);
}

export async function profileView() {
  const me = await api.get('/v1/me');
  const shown = h('dd', { id: 'my-display-name' }, me.display_name || t('profile.display_name_none'));
  const name = h('input', { name: 'display-name', maxlength: 64, value: me.display_name || '',
    placeholder: me.username || session.username });
  const slot = h('div');
  const btn = h('button', { type: 'submit', id: 'save-display-name' }, t('profile.display_name_save'));
  const form = h('form', { class: 'card', 'aria-labelledby': 'display-name-title' },
    h('h2', { id: 'display-name-title' }, t('profile.display_name_change')),
    field(t('profile.display_name'), name, t('profile.display_name_hint')), slot, btn);
  form.addEventListener('submit', busy(btn, slot, async () => {
    // An empty field clears the name: others see the username again.
    const fresh = await api.patch('/v1/me', { display_name: name.value.trim() || null });
    shown.replaceChildren(fresh.display_name || t('profile.display_name_none'));
    name.value = fresh.display_name || '';
    toast(t('profile.display_name_saved'));
  }));
  return h('div', {},
    h('h1', {}, t('profile.title')),
    h('dl', { class: 'card' },
      h('dt', {}, t('auth.username')), h('dd', { id: 'my-username' }, me.username || session.username),
      h('dt', {}, t('profile.display_name')), shown),
    form,
    h('ul', { class: 'actions' },
      h('li', {}, h('a', { href: '#/me/password', class: 'button', id: 'password-link' }, t('account.password_link'))),
      h('li', {}, h('a', { href: '#/me/security', class: 'button', id: 'security-link' }, t('security.link'))),
      // Anyone may create an organisation; the Admin menu is only for those with admin pages.
      h('li', {}, h('a', { href: '#/admin/orgs', class: 'button', id: 'orgs-link' }, t('admin.orgs.title')))));
}
