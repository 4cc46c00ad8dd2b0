// SPDX-License-Identifier: MIT
// Sign in and register.

import { register, signIn } from '../api.js';
import { t } from '../i18n.js';
import { busy, field, h } from '../ui.js';

// A page that sent the person here to sign in first (the phone approval page) is
// opened again; true when there was one.
function comeBack() {
  const back = sessionStorage.getItem('qun.return');
  sessionStorage.removeItem('qun.return');
  if (!back || !back.startsWith('/app/approve?')) return false;
  location.assign(back);
  return true;
}

export async function loginView() {
  const username = h('input', { name: 'username', autocomplete: 'username', required: true, maxlength: 64 });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const slot = h('div');
  const signInBtn = h('button', { type: 'submit', id: 'signin' }, t('auth.signin'));
  const form = h('form', { class: 'card', 'aria-labelledby': 'signin-title' },
    h('h2', { id: 'signin-title' }, t('auth.signin')),
    field(t('auth.username'), username),
    field(t('auth.password'), password),
    slot, signInBtn);
  form.addEventListener('submit', busy(signInBtn, slot, async () => {
    const s = await signIn(username.value.trim(), password.value);
    if (!s.password_change_required && comeBack()) return;
    location.hash = s.password_change_required ? '#/password' : '#/groups';
  }));

  const ru = h('input', { name: 'new-username', autocomplete: 'username', required: true, maxlength: 64 });
  const rp = h('input', { name: 'new-password', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  // The password twice: a mismatch is said as soon as the second one is typed.
  const rp2 = h('input', { name: 'new-password-again', id: 'register-password-again', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  const rmismatch = h('p', { class: 'error', id: 'register-mismatch', 'aria-live': 'polite' });
  const rcheck = () => {
    const bad = rp2.value !== '' && rp.value !== rp2.value;
    rmismatch.textContent = bad ? t('auth.mismatch') : '';
    rp2.setAttribute('aria-invalid', bad ? 'true' : 'false');
    return !bad;
  };
  rp.addEventListener('input', rcheck);
  rp2.addEventListener('input', rcheck);
  const rslot = h('div');
  const regBtn = h('button', { type: 'submit', id: 'register' }, t('auth.register'));
  const reg = h('form', { class: 'card', 'aria-labelledby': 'register-title' },
    h('h2', { id: 'register-title' }, t('auth.register_title')),
    field(t('auth.username'), ru),
    field(t('auth.password'), rp, t('auth.password_hint')),
    field(t('auth.password_again'), rp2), rmismatch,
    rslot, regBtn);
  reg.addEventListener('submit', busy(regBtn, rslot, async () => {
    if (!rcheck() || rp.value !== rp2.value) {
      rp2.focus();
      return;
    }
    await register(ru.value.trim(), rp.value);
    if (comeBack()) return;
    location.hash = '#/me';
  }));
  const waiting = sessionStorage.getItem('qun.return')
    ? h('p', { class: 'banner', id: 'signin-first', role: 'status' }, t('approve.signin_first')) : null;
  return h('div', {}, h('h1', {}, t('auth.title')), waiting, h('div', { class: 'cols' }, form, reg));
}
