// SPDX-License-Identifier: MIT
// The console's entry point: a hash router (#/groups, #/g/<id>, #/g/<id>/dissolve,
// #/g/<id>/dissolution, #/g/<id>/audit, #/approvals, #/inbox, #/me/email, #/invite/<token>,
// #/bill, #/admin[/…], #/me, #/me/security, #/password, #/login), the phone approval page
// at the path /app/approve?c=<challenge>&n=<nonce> (what a QR code opens; signed out, the
// address is kept and the person signs in first, then comes back), the navigation,
// the language switch, and focus management: after every page change the page's
// heading takes the focus, so keyboard and screen-reader users land on the new page.

import { session } from './api.js';
import { language, setLanguage, t } from './i18n.js';
import { dismissToast, errorBox, h } from './ui.js';
import { loginView } from './views/auth.js';
import { groupsView, profileView } from './views/groups.js';
import { groupView } from './views/group.js';
import { dissolveView, dissolutionView } from './views/dissolve.js';
import { removeView, transferView } from './views/ownership.js';
import { approvalsView } from './views/approvals.js';
import { inboxLink, inboxView, inviteView, mailView, pendingInvite } from './views/inbox.js';
import { auditView } from './views/audit.js';
import {
  adminHoldsView, adminOrgsView, adminOutboxView, adminReviewsView, adminUserView, adminUsersView, adminView,
} from './views/admin.js';
import { passwordView } from './views/password.js';
import { billView } from './views/payments.js';
import { accountPasswordView, adminAllowed, adminKnown, refreshAdmin } from './views/after.js';
import { approveView, securityView } from './views/approve.js';

const routes = [
  [/^#\/login$/, loginView, false],
  [/^#\/groups$/, groupsView, true],
  [/^#\/me$/, profileView, true],
  [/^#\/approvals$/, approvalsView, true],
  [/^#\/inbox$/, inboxView, true],
  [/^#\/me\/email$/, mailView, true],
  [/^#\/invite\/([\w-]+)$/, inviteView, false],
  [/^#\/g\/([\w-]+)$/, groupView, true],
  [/^#\/g\/([\w-]+)\/dissolve$/, dissolveView, true],
  [/^#\/g\/([\w-]+)\/dissolution$/, dissolutionView, true],
  [/^#\/g\/([\w-]+)\/audit$/, auditView, true],
  [/^#\/g\/([\w-]+)\/transfer$/, transferView, true],
  [/^#\/g\/([\w-]+)\/remove$/, removeView, true],
  [/^#\/admin$/, adminView, true],
  [/^#\/admin\/orgs$/, adminOrgsView, true],
  [/^#\/admin\/holds$/, adminHoldsView, true],
  [/^#\/admin\/reviews$/, adminReviewsView, true],
  [/^#\/admin\/outbox$/, adminOutboxView, true],
  [/^#\/admin\/users$/, adminUsersView, true],
  [/^#\/admin\/users\/([\w-]+)$/, adminUserView, true],
  [/^#\/password$/, passwordView, true],
  [/^#\/bill$/, billView, true],
  [/^#\/me\/password$/, accountPasswordView, true],
  [/^#\/me\/security$/, securityView, true],
];

// The approval page lives at a path of its own (a phone camera opens a plain URL): it
// shows while no hash route is chosen; the navigation's links still work from it.
const APPROVE_PATH = '/app/approve';
function approveRoute() {
  if (location.pathname !== APPROVE_PATH || (location.hash && location.hash !== '#/approve')) return null;
  return [approveView, [new URLSearchParams(location.search).get('c') || '']];
}

let cleanups = [];
let generation = 0;

function nav() {
  const el = document.getElementById('nav');
  if (!session.token) {
    el.replaceChildren();
    return;
  }
  const signOut = h('button', {
    type: 'button', class: 'link', onclick: () => {
      session.clear();
      location.hash = '#/login';
    },
  }, t('nav.signout'));
  if (session.mustChange) {
    el.replaceChildren(signOut);
    return;
  }
  const link = (href, key) => h('a', { href, 'aria-current': location.hash.startsWith(href) ? 'page' : null }, t(key));
  el.replaceChildren(...[
    link('#/groups', 'nav.groups'),
    inboxLink(),
    link('#/approvals', 'nav.approvals'),
    link('#/bill', 'nav.bill'),
    adminAllowed() ? link('#/admin', 'nav.admin') : null, // only for someone with an admin page
    link('#/me', 'nav.profile'),
    signOut,
  ].filter(Boolean));
}

function chrome() {
  document.getElementById('lang-label').textContent = t('app.language');
  document.getElementById('skip-link').textContent = t('app.skip');
  document.getElementById('lang').value = language();
  document.title = 'qun';
  nav();
}

export async function render() {
  const gen = ++generation;
  for (const fn of cleanups) fn();
  cleanups = [];
  document.getElementById('banner').replaceChildren();
  chrome();
  if (session.token && !session.mustChange && (!adminKnown() || location.hash.startsWith('#/admin'))) refreshAdmin().then((changed) => changed && nav());
  let hash = location.hash || '#/groups';
  let match = null;
  let route = routes.find(([re]) => (match = re.exec(hash)));
  if (!route) {
    hash = '#/groups';
    route = routes[1];
    match = [hash];
  }
  const approve = approveRoute();
  if (approve) {
    route = [approve[0], approve[0], true];
    match = [null, ...approve[1]];
  }
  if (route[2] && !session.token) {
    // Back to this address after signing in (views/auth.js): the approval page, say.
    if (approve) sessionStorage.setItem('qun.return', location.pathname + location.search);
    location.replace('#/login');
    return;
  }
  if (session.token && !session.mustChange && pendingInvite() && !hash.startsWith('#/invite/')) {
    location.replace('#/invite/' + pendingInvite()); // back to the invitation that asked to sign in
    return;
  }
  if (session.token && session.mustChange && hash !== '#/password') {
    location.replace('#/password');
    return;
  }
  const main = document.getElementById('view');
  main.setAttribute('aria-busy', 'true');
  const ctx = {
    onLeave: (fn) => cleanups.push(fn),
    current: () => gen === generation,
    rerender: render,
  };
  let node;
  try {
    node = await route[1](match.slice(1), ctx);
  } catch (e) {
    node = errorBox(e.code ? e : { code: 'ERROR' }); // never the server's (or a bug's) English
  }
  if (gen !== generation) return; // the user moved on while this page loaded
  main.replaceChildren(node);
  main.removeAttribute('aria-busy');
  const heading = main.querySelector('h1');
  if (heading) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

// A language switch draws the page again in the other language.  What the person typed
// or chose in its fields (found again by name or id; not files) and where they were on
// the page are put back.  Only a field the new page draws differently is touched, and it
// announces the change, so what depends on it (a name typed to confirm, a passphrase
// typed twice) follows; a switch the server already holds is drawn as it is and left be.
function typedFields() {
  const kept = [];
  const seen = new Map(); // selector -> fields found with it so far
  for (const el of document.querySelectorAll('#view input, #view textarea, #view select')) {
    // By name, then by an id of the view's own: field() numbers its ids afresh each time.
    let sel = el.name ? `[name="${CSS.escape(el.name)}"]` : el.id && !/^f\d+$/.test(el.id) ? `#${CSS.escape(el.id)}` : null;
    if (!sel || el.type === 'file' || el.type === 'hidden') continue;
    if (el.type === 'radio') sel += `[value="${CSS.escape(el.value)}"]`;
    const index = seen.get(sel) ?? 0;
    seen.set(sel, index + 1);
    if (el.type === 'radio') {
      if (el.checked) kept.push({ sel, index, checked: true });
    } else if (el.type === 'checkbox') kept.push({ sel, index, checked: el.checked });
    else kept.push({ sel, index, value: el.value });
  }
  return kept;
}

function putBack(kept) {
  for (const k of kept) {
    const el = document.querySelectorAll(`#view ${k.sel}`)[k.index];
    if (!el || ('checked' in k ? el.checked === k.checked : el.value === k.value)) continue;
    if ('checked' in k) el.checked = k.checked;
    else el.value = k.value;
    el.dispatchEvent(new Event('input', { bubbles: true }));
    el.dispatchEvent(new Event('change', { bubbles: true }));
  }
}

document.getElementById('lang').addEventListener('change', async (e) => {
  const kept = typedFields();
  const y = window.scrollY;
  setLanguage(e.target.value);
  dismissToast();
  await render();
  putBack(kept);
  window.scrollTo(0, y);
});
document.getElementById('skip-link').addEventListener('click', (e) => {
  e.preventDefault();
  document.getElementById('view').focus();
});
window.addEventListener('hashchange', render);
window.addEventListener('qun:must-change', () => {
  location.hash = '#/password';
});
window.addEventListener('qun:signed-out', () => {
  location.hash = '#/login';
});
setLanguage(language());
render();
