// SPDX-License-Identifier: MIT
// #/password: a session opened with a server admin's one-time code sets a new password
// before anything else (every other route answers PASSWORD_CHANGE_REQUIRED; docs/admin.md).
// The code is the old password; the sign-in form's copy is used when this tab has it.

import { api, session, takeOneTimeCode } from '../api.js';
import { t } from '../i18n.js';
import { busy, field, h, toast } from '../ui.js';

export async function passwordView() {
  const known = takeOneTimeCode();
  const code = h('input', { name: 'one-time-code', type: 'password', autocomplete: 'one-time-code', required: true });
  const pw = h('input', { name: 'new-password', type: 'password', autocomplete: 'new-password', required: true,
    minlength: 8, id: 'new-password' });
  const again = h('input', { name: 'new-password-again', type: 'password', autocomplete: 'new-password',
    required: true, minlength: 8 });
  const slot = h('div');
  const btn = h('button', { type: 'submit', id: 'set-password' }, t('password.save'));
  const form = h('form', { class: 'card', 'aria-labelledby': 'password-title' },
    h('h2', { id: 'password-title' }, t('password.form')),
    known ? null : field(t('password.code'), code),
    field(t('password.new'), pw, t('auth.password_hint')),
    field(t('password.again'), again), slot, btn);
  form.addEventListener('submit', busy(btn, slot, async () => {
    if (pw.value !== again.value) {
      slot.replaceChildren(h('p', { class: 'error', role: 'alert', id: 'password-mismatch' }, t('password.mismatch')));
      return;
    }
    await api.post('/v1/me/password', { old_password: known || code.value, new_password: pw.value });
    session.mustChange = false;
    toast(t('password.saved'));
    location.hash = '#/groups';
  }));
  return h('div', {},
    h('h1', {}, t('password.title')),
    h('p', { class: 'muted', id: 'password-intro' }, t('password.intro')),
    form);
}
