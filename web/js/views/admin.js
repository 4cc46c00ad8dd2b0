// SPDX-License-Identifier: MIT
// The admin pages, each for the role the server gives it to (docs/design.md section 2):
//   #/admin          an index of the pages this user may use (GET /v1/me's roles);
//   #/admin/orgs     org admins: their orgs and the enterprise dissolve-protection
//                    switch (POST /v1/orgs/{id}/protection); create an org;
//   #/admin/holds    the compliance role: a group's legal holds, place and release;
//   #/admin/reviews  server admins: the risk-review queue (approvals of kind
//                    risk_review, decided in the approvals inbox's way);
//   #/admin/outbox   server admins: webhook dead letters and their retry;
//   #/admin/users    server admins: the accounts, searched by username prefix, and
//   #/admin/users/<openid>  one account: its groups, disable / enable, password reset.
// The server checks every role again; a page answers its 403 as an error box.

import { api, enc } from '../api.js';
import { t, when } from '../i18n.js';
import { badge, busy, errorBox, field, h, stackTable, toast } from '../ui.js';
import { approvalItem } from './approvals.js';

const PAGES = [
  ['orgs', () => true],
  ['holds', (me) => me.compliance],
  ['reviews', (me) => me.server_admin],
  ['outbox', (me) => me.server_admin],
  ['users', (me) => me.server_admin],
];

function back() {
  return h('p', {}, h('a', { href: '#/admin' }, t('admin.back')));
}

export async function adminView() {
  const me = await api.get('/v1/me');
  const mine = PAGES.filter(([, may]) => may(me));
  return h('div', {},
    h('h1', {}, t('admin.title')),
    h('p', { class: 'muted' }, t('admin.intro')),
    h('ul', { class: 'list', id: 'admin-pages' }, mine.map(([name]) =>
      h('li', {}, h('a', { href: `#/admin/${name}`, id: `admin-${name}` }, t(`admin.${name}.title`)),
        h('span', { class: 'muted' }, ` — ${t(`admin.${name}.what`)}`)))));
}

// ---- orgs and dissolve protection ----
export async function adminOrgsView(_params, ctx) {
  const page = await api.get('/v1/orgs?limit=200');
  const rows = page.items.map((o) => {
    const slot = h('div');
    let control = h('span', { class: 'muted' }, t('admin.orgs.school'));
    if (o.kind === 'enterprise') {
      const box = h('input', {
        type: 'checkbox', role: 'switch', id: `protect-${o.id}`, checked: o.dissolve_protection,
        'aria-describedby': `protect-${o.id}-hint`,
      });
      box.addEventListener('change', async () => {
        const want = box.checked;
        box.disabled = true;
        slot.replaceChildren();
        try {
          const fresh = await api.post(`/v1/orgs/${enc(o.id)}/protection`, { enabled: want });
          box.checked = fresh.dissolve_protection;
          toast(t(fresh.dissolve_protection ? 'admin.orgs.on' : 'admin.orgs.off', { name: o.name }));
        } catch (e) {
          box.checked = !want;
          slot.replaceChildren(errorBox(e));
        } finally {
          box.disabled = false;
          box.focus(); // disabling dropped the focus; keep the keyboard user on the switch
        }
      });
      control = h('div', { class: 'switch' },
        box, ' ', h('label', { for: `protect-${o.id}` }, t('admin.orgs.protection', { name: o.name })),
        h('p', { class: 'hint', id: `protect-${o.id}-hint` }, t('admin.orgs.protection_hint')));
    }
    return h('li', { class: 'card', 'data-org': o.id },
      h('h2', {}, o.name),
      h('p', { class: 'muted' }, `${t('admin.orgs.kind_' + o.kind)} · ${t('admin.orgs.admins_n', { n: o.admins.length })}`),
      control, slot);
  });
  const name = h('input', { name: 'org-name', required: true, maxlength: 128 });
  const kind = h('select', { name: 'org-kind' }, ['enterprise', 'school'].map((k) => h('option', { value: k }, t('admin.orgs.kind_' + k))));
  const slot = h('div');
  const btn = h('button', { type: 'submit', id: 'create-org' }, t('admin.orgs.create'));
  const form = h('form', { class: 'card', 'aria-labelledby': 'create-org-title' },
    h('h2', { id: 'create-org-title' }, t('admin.orgs.create')),
    field(t('admin.orgs.name'), name), field(t('admin.orgs.kind'), kind), slot, btn);
  form.addEventListener('submit', busy(btn, slot, async () => {
    const o = await api.post('/v1/orgs', { name: name.value.trim(), kind: kind.value });
    toast(t('admin.orgs.created', { name: o.name }));
    ctx.rerender();
  }));
  return h('div', {},
    h('h1', {}, t('admin.orgs.title')),
    back(),
    rows.length ? h('ul', { class: 'plain', id: 'orgs' }, rows) : h('p', { class: 'muted' }, t('admin.orgs.none')),
    form);
}

// ---- legal holds ----
export async function adminHoldsView() {
  const gid = h('input', { name: 'hold-group', required: true, maxlength: 64, placeholder: 'g_…', autocomplete: 'off' });
  const slot = h('div');
  const btn = h('button', { type: 'submit', id: 'hold-find' }, t('admin.holds.show'));
  const result = h('div', { id: 'holds', 'aria-live': 'polite' });
  const form = h('form', { class: 'card row', 'aria-label': t('admin.holds.find') }, field(t('admin.holds.group'), gid), btn, slot);

  async function show(g) {
    const list = await api.get(`/v1/groups/${enc(g)}/holds`);
    const reason = h('textarea', { name: 'hold-reason', rows: 2, maxlength: 500, required: true });
    const placeSlot = h('div');
    const place = h('button', { type: 'submit', id: 'hold-place' }, t('admin.holds.place'));
    const placeForm = h('form', { class: 'card', 'aria-labelledby': 'hold-place-title' },
      h('h2', { id: 'hold-place-title' }, t('admin.holds.place_title')),
      field(t('admin.holds.reason'), reason), placeSlot, place);
    placeForm.addEventListener('submit', busy(place, placeSlot, async () => {
      await api.post(`/v1/groups/${enc(g)}/holds`, { reason: reason.value.trim() });
      toast(t('admin.holds.placed'));
      await show(g);
    }));
    const items = list.items.map((x) => {
      const s = h('div');
      const release = x.released_at ? null : h('button', { type: 'button', class: 'danger', 'data-release': x.id },
        t('admin.holds.release'));
      release?.addEventListener('click', busy(release, s, async () => {
        await api.del(`/v1/groups/${enc(g)}/holds/${enc(x.id)}`);
        toast(t('admin.holds.released'));
        await show(g);
      }));
      return h('li', { class: 'card', 'data-hold': x.id, 'data-active': x.released_at ? 'no' : 'yes' },
        h('p', {}, x.reason),
        h('p', { class: 'muted' }, t('admin.holds.placed_at', { when: when(x.placed_at), by: x.placed_by_name ?? x.placed_by })),
        x.released_at ? h('p', { class: 'muted' }, t('admin.holds.released_at', { when: when(x.released_at), by: x.released_by_name ?? x.released_by })) : null,
        release, s);
    });
    result.replaceChildren(
      h('h2', {}, t('admin.holds.of', { group: list.group_name ?? list.group })),
      items.length ? h('ul', { class: 'plain' }, items) : h('p', { class: 'muted' }, t('admin.holds.none')),
      placeForm);
  }
  form.addEventListener('submit', busy(btn, slot, () => show(gid.value.trim())));
  return h('div', {}, h('h1', {}, t('admin.holds.title')), back(), h('p', { class: 'muted' }, t('admin.holds.intro')), form, result);
}

// ---- the risk-review queue ----
export async function adminReviewsView(_params, ctx) {
  const page = await api.get('/v1/approvals');
  const reviews = page.items.filter((a) => a.kind === 'risk_review');
  return h('div', {},
    h('h1', {}, t('admin.reviews.title')), back(),
    h('p', { class: 'muted' }, t('admin.reviews.intro')),
    reviews.length ? h('ul', { class: 'list', id: 'reviews' }, reviews.map((a) => approvalItem(a, ctx)))
      : h('p', { class: 'muted', id: 'reviews' }, t('admin.reviews.none')));
}

// ---- webhook dead letters ----
export async function adminOutboxView(_params, ctx) {
  const page = await api.get('/v1/admin/outbox/dead?limit=200');
  const rows = page.items.map((d) => {
    const slot = h('div');
    const retry = h('button', { type: 'button', 'data-retry': d.id }, t('admin.outbox.retry'));
    retry.addEventListener('click', busy(retry, slot, async () => {
      const r = await api.post(`/v1/admin/outbox/${enc(d.id)}/retry`, {});
      toast(t('admin.outbox.requeued', { n: r.requeued }));
      ctx.rerender();
    }));
    return h('tr', { 'data-event': d.id },
      h('td', {}, h('code', {}, d.id)), h('td', {}, d.topic), h('td', {}, h('code', { class: 'small' }, d.url)),
      h('td', {}, String(d.attempts)),
      h('td', {}, d.last_status === null ? d.last_error : `${d.last_status} ${d.last_error}`),
      h('td', {}, when(d.last_attempt_at)), h('td', {}, retry, slot));
  });
  const cols = ['event', 'topic', 'url', 'attempts', 'last', 'time', 'action'];
  return h('div', {},
    h('h1', {}, t('admin.outbox.title')), back(),
    h('p', { class: 'muted' }, t('admin.outbox.intro')),
    rows.length ? h('div', { class: 'scroll', tabindex: 0, role: 'region', 'aria-labelledby': 'dead-caption' },
      stackTable(h('table', { id: 'dead-letters' },
        h('caption', { id: 'dead-caption' }, t('admin.outbox.caption', { n: rows.length })),
        h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, t('admin.outbox.' + c))))),
        h('tbody', {}, rows))))
      : h('p', { class: 'muted', id: 'dead-letters' }, t('admin.outbox.none')));
}

// ---- accounts ----
function accountState(u) {
  if (u.disabled) return 'disabled';
  return u.password_change_required ? 'must_change' : 'active';
}

function stateBadge(u) {
  const s = accountState(u);
  const look = { active: 'active', disabled: 'dissolved', must_change: 'pending' }[s];
  return h('span', { class: `badge state-${look}`, 'data-account-state': s },
    t('admin.users.state_' + s));
}

// Names, never ids: the table shows usernames and display names; the openid is only in
// the link to the account's page.
export async function adminUsersView(_params, ctx) {
  const prefix = sessionStorage.getItem('qun.admin.prefix') || '';
  const page = await api.get('/v1/admin/users?limit=50' + (prefix ? `&prefix=${enc(prefix)}` : ''));
  const search = h('input', { name: 'prefix', type: 'search', maxlength: 64, value: prefix, id: 'user-prefix' });
  const go = h('button', { type: 'submit', id: 'user-search' }, t('admin.users.search'));
  const form = h('form', { class: 'card', role: 'search', 'aria-labelledby': 'user-search-title' },
    h('h2', { id: 'user-search-title' }, t('admin.users.search_title')),
    field(t('admin.users.prefix'), search, t('admin.users.prefix_hint')), go);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    sessionStorage.setItem('qun.admin.prefix', search.value.trim());
    ctx.rerender();
  });
  const rows = page.items.map((u) => h('tr', { 'data-user': u.username },
    h('td', {}, h('a', { href: `#/admin/users/${enc(u.openid)}` }, u.username)),
    h('td', {}, u.display_name || '—'),
    h('td', {}, when(u.created_at)),
    h('td', {}, u.last_seen ? when(u.last_seen) : t('admin.users.never')),
    h('td', {}, stateBadge(u))));
  const cols = ['username', 'name', 'created', 'last_seen', 'state'];
  return h('div', {},
    h('h1', {}, t('admin.users.title')), back(),
    h('p', { class: 'muted' }, t('admin.users.intro')),
    form,
    rows.length ? h('div', { class: 'scroll', tabindex: 0, role: 'region', 'aria-labelledby': 'users-caption' },
      stackTable(h('table', { id: 'users' },
        h('caption', { id: 'users-caption' }, t(page.next_cursor ? 'admin.users.caption_more' : 'admin.users.caption',
          { n: rows.length })),
        h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, t('admin.users.' + c))))),
        h('tbody', {}, rows))))
      : h('p', { class: 'muted', id: 'users' }, t('admin.users.none')));
}

// The one-time code last shown, so that the page drawn again (another language) still
// shows it; forgotten as soon as the admin goes to another page.
let shownCode = null;
window.addEventListener('hashchange', () => { shownCode = null; });

function codeBox(r) {
  return h('div', { class: 'card', id: 'reset-code-box' },
    h('p', {}, t('admin.users.code_is', { name: r.username })),
    h('p', {}, h('code', { id: 'reset-code', class: 'big' }, r.code)),
    h('p', { class: 'hint' }, t('admin.users.code_hint')));
}

export async function adminUserView([openid], ctx) {
  const u = await api.get(`/v1/admin/users/${enc(openid)}`);
  const slot = h('div');
  const codeSlot = h('div', { 'aria-live': 'polite' }, shownCode?.openid === openid ? codeBox(shownCode) : null);
  const toggle = h('button', { type: 'button', id: u.disabled ? 'user-enable' : 'user-disable',
    class: u.disabled ? null : 'danger' }, t(u.disabled ? 'admin.users.enable' : 'admin.users.disable'));
  toggle.addEventListener('click', busy(toggle, slot, async () => {
    const r = await api.post(`/v1/admin/users/${enc(openid)}/${u.disabled ? 'enable' : 'disable'}`, {});
    toast(t(r.disabled ? 'admin.users.disabled_done' : 'admin.users.enabled_done',
      { name: r.username, n: r.sessions_revoked }));
    ctx.rerender();
  }));
  const reset = h('button', { type: 'button', id: 'user-reset' }, t('admin.users.reset'));
  reset.addEventListener('click', busy(reset, slot, async () => {
    const r = await api.post(`/v1/admin/users/${enc(openid)}/password-reset`, {});
    // Shown on this page only: the server keeps only its hash.
    shownCode = { openid, username: r.username, code: r.code };
    codeSlot.replaceChildren(codeBox(shownCode));
    toast(t('admin.users.reset_done', { name: r.username }));
  }));
  const groups = u.groups.map((g) => h('tr', {},
    h('td', {}, g.name), h('td', {}, t('role.' + g.role)), h('td', {}, badge(g.state))));
  return h('div', {},
    h('h1', {}, u.display_name ? `${u.display_name} (${u.username})` : u.username),
    h('p', {}, h('a', { href: '#/admin/users' }, t('admin.users.back'))),
    h('dl', { class: 'card', id: 'user-facts' },
      h('dt', {}, t('auth.username')), h('dd', {}, u.username),
      h('dt', {}, t('admin.users.name')), h('dd', {}, u.display_name || '—'),
      h('dt', {}, t('admin.users.created')), h('dd', {}, when(u.created_at)),
      h('dt', {}, t('admin.users.last_seen')), h('dd', {}, u.last_seen ? when(u.last_seen) : t('admin.users.never')),
      h('dt', {}, t('admin.users.state')), h('dd', {}, stateBadge(u),
        u.disabled ? ` ${t('admin.users.since', { when: when(u.disabled_at) })}` : null)),
    h('div', { class: 'card' },
      h('h2', {}, t('admin.users.actions')),
      h('p', { class: 'muted' }, t(u.disabled ? 'admin.users.enable_what' : 'admin.users.disable_what')),
      h('p', {}, toggle),
      h('p', { class: 'muted' }, t('admin.users.reset_what')),
      h('p', {}, reset), slot, codeSlot),
    h('h2', { id: 'user-groups-title' }, t('admin.users.groups')),
    groups.length ? h('div', { class: 'scroll', tabindex: 0, role: 'region', 'aria-labelledby': 'user-groups-title' },
      stackTable(h('table', { id: 'user-groups' },
        h('thead', {}, h('tr', {}, ['group', 'role', 'group_state'].map((c) =>
          h('th', { scope: 'col' }, t('admin.users.' + c))))),
        h('tbody', {}, groups))))
      : h('p', { class: 'muted', id: 'user-groups' }, t('admin.users.no_groups')));
}
