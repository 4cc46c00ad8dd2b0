// SPDX-License-Identifier: MIT
// Every verification a protected action can ask for, done in the browser.  A preview's
// `requirements` or a 428 answer's (docs/verification.md: a list [{method}] of the
// platform's missing methods, or {all, any_of, review, denied} for a risk step-up) is
// turned into steps the person completes one after the other:
//   confirm      the preview's confirmation token (the caller has it);
//   typed_name   the group's name typed back;
//   password     the account's password again;
//   qr           a QR code another trusted device of the same user approves (the phone
//                opens its approve_url); on a narrow screen, or when this device has
//                its own passkey, "approve on this device with your passkey" instead;
//   device_key   this device's passkey (navigator.credentials.get);
//   totp         a code of an authenticator app, with enrolment (a QR code for the
//                app) when the account has none yet.
// `any_of` becomes a choice between its methods.  The outcome of a QR approval comes
// over the event stream (live.js followChallenge), never by polling.  A shape the
// console does not know is a clear message; a step never leaves a disabled button
// without saying why.  collectProofs resolves with the members to add to the action's
// body (confirmation_token, typed_name, password, challenge_id, step_up_challenge_id,
// totp_code).

import { api, ApiError, enc } from './api.js';
import { addWords, t, when } from './i18n.js';
import { followChallenge } from './live.js';
import { errorBox, field, h } from './ui.js';
import { approveWithPasskey, passkeyError, supported } from './webauthn.js';

addWords({ en: {
  'steps.title': 'Verification',
  'steps.more_title': 'One more verification',
  'diss.steps_running': 'Complete the verification below: the request then goes on by itself.',
  'steps.intro': 'Complete each step; the request goes on by itself once they are done.',
  'steps.done': 'Done',
  'steps.continue': 'Continue',
  'steps.choose': 'Choose one way to confirm it is you:',
  'steps.typed.label': 'Type the group’s name exactly: {name}',
  'steps.typed.why': 'The button works once the name matches exactly.',
  'steps.password.label': 'Your password',
  'steps.password.why': 'Enter your password to continue.',
  'steps.denied': 'Nothing can approve this request now: the risk checks refuse it. Try again later.',
  'steps.review': 'After this, a reviewer must approve the request before it goes ahead.',
  'steps.no_token': 'This step needs a fresh preview. Start again from the preview.',
  'steps.narrow': 'Approve on this device with your passkey',
  'steps.narrow_intro': 'This device holds a passkey of yours: approve with your fingerprint, face or screen lock instead of scanning a code.',
  'steps.show_qr': 'Show a QR code for another device instead',
  'steps.passkey.title': 'Confirm with your passkey',
  'steps.passkey.intro': 'Your browser asks for your fingerprint, face or screen lock.',
  'steps.passkey.button': 'Use my passkey',
  'steps.passkey.none': 'This account has no passkey yet. Add one under Your profile → Security, on this device, then try again.',
  'steps.passkey.unsupported': 'This browser cannot use passkeys. Use another way, or another browser.',
  'steps.passkey.setup_link': 'Set up a passkey',
  'steps.passkey.retry': 'Try again',
  'steps.totp.title': 'Code from your authenticator app',
  'steps.totp.code': 'The 6-digit code your app shows',
  'steps.totp.why': 'Enter the 6 digits your app shows to continue.',
  'steps.totp.enrol_title': 'Set up an authenticator app',
  'steps.totp.enrol_intro': 'Scan this code with an authenticator app (such as Google Authenticator, Microsoft Authenticator or FreeOTP), then enter the code it shows.',
  'steps.totp.qr_alt': 'QR code to add qun to an authenticator app',
  'steps.totp.secret': 'Cannot scan? Type this key into the app:',
  'steps.totp.confirm': 'Turn on the app',
  'steps.totp.enrolled': 'Your authenticator app is set up. Wait for the next code (it changes every 30 seconds) and enter it below.',
  'steps.qr.declined': 'You declined this on your other device. Nothing was done.',
  'error.PASSKEY_CANCELLED': 'The passkey prompt was cancelled or timed out.',
  'error.PASSKEY_UNAVAILABLE': 'This browser could not use a passkey here.',
  'error.CHALLENGE_DECLINED': 'This request was declined on your other device.',
  'error.STEP_UP_REQUIRED': 'Enter your password again to continue.',
  'error.RISK_DENIED': 'The risk checks refuse this request now. Try again later.',
  'error.DEVICE_NOT_TRUSTED': 'No device of yours can approve this yet: add a passkey on your phone (Your profile → Security) first.',
  'error.CHALLENGE_NOT_FOUND': 'This approval request does not exist, or it is not yours.',
  'error.CHALLENGE_EXPIRED': 'The approval request expired. Start again to get a new one.',
  'error.CHALLENGE_USED': 'This approval request was already used.',
  'error.CHALLENGE_NOT_APPROVED': 'The approval request is not approved yet.',
  'error.CHALLENGE_ALREADY_APPROVED': 'This request is already approved.',
  'error.CHALLENGE_MISMATCH': 'The approval was given for something else. Start again.',
  'error.QR_SAME_DEVICE': 'This device asked for the approval, so another device of yours must give it.',
  'error.QR_REQUIRED': 'An approval from another device of yours (or your passkey) is needed.',
  'error.DEVICE_KEY_REQUIRED': 'Your passkey on this device is needed.',
  'error.TOTP_REQUIRED': 'A code from your authenticator app is needed.',
  'error.TOTP_INVALID': 'That code is wrong or too old. Enter the code your app shows now.',
  'error.TOTP_REPLAYED': 'That code was already used. Wait for the next one (every 30 seconds).',
  'error.TOTP_NOT_ENROLLED': 'Set up an authenticator app first.',
  'error.TOTP_ALREADY_ACTIVE': 'An authenticator app is already set up.',
  'error.PASSKEY_INVALID': 'The passkey’s answer was refused. Try again.',
  'error.PASSKEY_NOT_FOUND': 'This passkey is not registered for your account.',
  'error.PASSKEY_EXISTS': 'This passkey is already registered.',
  'error.BAD_CREDENTIALS': 'The password is wrong.',
  'error.CONFIRMATION_REQUIRED': 'The confirmation from the preview is needed. Start again from the preview.',
  'error.CONFIRMATION_INVALID': 'The preview expired or changed. Ask for the preview again.',
  'error.TYPED_NAME_REQUIRED': 'Type the group’s name to confirm.',
  'error.TYPED_NAME_MISMATCH': 'The name typed does not match the group’s name.',
} });
addWords({ zh: {
  'steps.title': '身份验证',
  'steps.more_title': '还需一项验证',
  'diss.steps_running': '请完成下方的验证，之后请求会自动继续。',
  'steps.intro': '请逐步完成；全部完成后请求会自动继续。',
  'steps.done': '已完成',
  'steps.continue': '继续',
  'steps.choose': '请选择一种方式确认是你本人：',
  'steps.typed.label': '请准确输入群名称：{name}',
  'steps.typed.why': '名称完全一致后按钮才可用。',
  'steps.password.label': '你的密码',
  'steps.password.why': '请输入密码后继续。',
  'steps.denied': '目前没有任何方式能批准此请求：风险检查拒绝了它。请稍后再试。',
  'steps.review': '完成后，还需审核人员批准，请求才会继续。',
  'steps.no_token': '此步骤需要重新预览。请从预览重新开始。',
  'steps.narrow': '在本设备上用通行密钥批准',
  'steps.narrow_intro': '本设备上有你的通行密钥：可以用指纹、面容或屏幕锁批准，无需扫码。',
  'steps.show_qr': '改为显示二维码，用另一台设备批准',
  'steps.passkey.title': '用通行密钥确认',
  'steps.passkey.intro': '浏览器会请你验证指纹、面容或屏幕锁。',
  'steps.passkey.button': '使用我的通行密钥',
  'steps.passkey.none': '此账号还没有通行密钥。请先在本设备的“个人资料 → 安全”中添加，然后重试。',
  'steps.passkey.unsupported': '此浏览器无法使用通行密钥。请换一种方式或换一个浏览器。',
  'steps.passkey.setup_link': '设置通行密钥',
  'steps.passkey.retry': '重试',
  'steps.totp.title': '身份验证器应用的验证码',
  'steps.totp.code': '应用显示的 6 位验证码',
  'steps.totp.why': '请输入应用显示的 6 位数字后继续。',
  'steps.totp.enrol_title': '设置身份验证器应用',
  'steps.totp.enrol_intro': '用身份验证器应用（如 Google 身份验证器、Microsoft Authenticator 或 FreeOTP）扫描此二维码，然后输入它显示的验证码。',
  'steps.totp.qr_alt': '把 qun 添加到身份验证器应用的二维码',
  'steps.totp.secret': '无法扫描？请在应用中输入此密钥：',
  'steps.totp.confirm': '启用身份验证器',
  'steps.totp.enrolled': '身份验证器已设置好。请等待下一个验证码（每 30 秒更换一次），然后在下方输入。',
  'steps.qr.declined': '你已在另一台设备上拒绝了此请求。未做任何操作。',
  'error.PASSKEY_CANCELLED': '通行密钥验证已取消或超时。',
  'error.PASSKEY_UNAVAILABLE': '此浏览器无法在这里使用通行密钥。',
  'error.CHALLENGE_DECLINED': '此请求已在你的另一台设备上被拒绝。',
  'error.STEP_UP_REQUIRED': '请再次输入密码后继续。',
  'error.RISK_DENIED': '风险检查目前拒绝此请求。请稍后再试。',
  'error.DEVICE_NOT_TRUSTED': '你还没有能批准此操作的设备：请先在手机上添加通行密钥（个人资料 → 安全）。',
  'error.CHALLENGE_NOT_FOUND': '此批准请求不存在，或不属于你。',
  'error.CHALLENGE_EXPIRED': '批准请求已过期。请重新开始以获取新的请求。',
  'error.CHALLENGE_USED': '此批准请求已被使用。',
  'error.CHALLENGE_NOT_APPROVED': '批准请求尚未被批准。',
  'error.CHALLENGE_ALREADY_APPROVED': '此请求已被批准。',
  'error.CHALLENGE_MISMATCH': '此批准是针对其他操作的。请重新开始。',
  'error.QR_SAME_DEVICE': '请求批准的是本设备，因此必须由你的另一台设备批准。',
  'error.QR_REQUIRED': '需要你的另一台设备（或通行密钥）批准。',
  'error.DEVICE_KEY_REQUIRED': '需要本设备上的通行密钥。',
  'error.TOTP_REQUIRED': '需要身份验证器应用的验证码。',
  'error.TOTP_INVALID': '验证码错误或已过时。请输入应用当前显示的验证码。',
  'error.TOTP_REPLAYED': '此验证码已使用过。请等待下一个（每 30 秒更换一次）。',
  'error.TOTP_NOT_ENROLLED': '请先设置身份验证器应用。',
  'error.TOTP_ALREADY_ACTIVE': '身份验证器应用已设置。',
  'error.PASSKEY_INVALID': '通行密钥的应答被拒绝。请重试。',
  'error.PASSKEY_NOT_FOUND': '此通行密钥未登记在你的账号下。',
  'error.PASSKEY_EXISTS': '此通行密钥已登记。',
  'error.BAD_CREDENTIALS': '密码错误。',
  'error.CONFIRMATION_REQUIRED': '需要预览中的确认。请从预览重新开始。',
  'error.CONFIRMATION_INVALID': '预览已过期或已更改。请重新预览。',
  'error.TYPED_NAME_REQUIRED': '请输入群名称以确认。',
  'error.TYPED_NAME_MISMATCH': '输入的名称与群名称不一致。',
} });

const KNOWN = ['confirm', 'typed_name', 'password', 'qr', 'device_key', 'totp'];

// A plan {all: [...], anyOf: [...], review, denied} from requirements in any documented
// shape, or null for anything else (the caller shows req.unexpected).
export function planOf(reqs) {
  const names = (a) => Array.isArray(a) && a.every((m) => typeof m === 'string');
  if (Array.isArray(reqs)) {
    if (!reqs.every((r) => r && typeof r.method === 'string')) return null;
    const all = reqs.map((r) => r.method);
    return all.every((m) => KNOWN.includes(m)) ? { all, anyOf: [], review: false, denied: false } : null;
  }
  if (reqs && typeof reqs === 'object' && names(reqs.all) && (reqs.any_of === undefined || names(reqs.any_of))) {
    const plan = { all: reqs.all, anyOf: reqs.any_of ?? [], review: !!reqs.review, denied: !!reqs.denied };
    if (![...plan.all, ...plan.anyOf].every((m) => KNOWN.includes(m))) return null;
    return plan;
  }
  return null;
}

// A JSON text with sorted keys and no spaces: what qun_params_digest hashes.
export function canonical(v) {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

export async function sha256hex(text) {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
  return Array.from(d, (x) => x.toString(16).padStart(2, '0')).join('');
}

export const narrow = () => window.matchMedia('(max-width: 40em)').matches;

// What this account holds: a passkey on this device, keyed devices other than this one.
async function keys() {
  const [pk, dev] = await Promise.all([
    api.get('/v1/me/passkeys').catch(() => ({ items: [] })),
    api.get('/v1/me/devices').catch(() => ({ items: [] })),
  ]);
  return {
    passkeys: pk.items.length,
    passkeyHere: pk.items.some((p) => p.current),
    otherDevice: dev.items.some((d) => d.has_key && !d.current),
  };
}

// A step's card: a heading, its body, and a line that says when it is done.  A method's
// words are written for the middle of a list ("your password again"); as a heading they
// start with a capital (nothing changes in Chinese).
function stepCard(id, title, ...body) {
  return h('li', { class: 'step', id: `step-${id}`, 'data-method': id },
    h('h3', { id: `step-${id}-title`, tabindex: -1 }, title.charAt(0).toUpperCase() + title.slice(1)), ...body);
}

function markDone(card) {
  card.classList.add('done');
  card.append(h('p', { class: 'step-done', role: 'status' }, '✓ ', t('steps.done')));
  for (const el of card.querySelectorAll('input, button')) el.disabled = true;
  for (const el of card.querySelectorAll('.hint.why')) el.remove(); // nothing waits any more
}

// A Continue button with the reason it waits for written beside it while it is disabled.
function gated(input, ok, why, id) {
  const btn = h('button', { type: 'submit', id, disabled: true }, t('steps.continue'));
  const reason = h('p', { class: 'hint why', id: `${id}-why` }, why);
  btn.setAttribute('aria-describedby', reason.id);
  const update = () => {
    btn.disabled = !ok();
    reason.hidden = !btn.disabled;
  };
  input.addEventListener('input', update);
  update();
  return [btn, reason];
}

function typedStep(list, opts) {
  return new Promise((resolve) => {
    const input = h('input', { name: 'typed-name', id: 'step-typed-input', autocomplete: 'off', spellcheck: false });
    const [btn, why] = gated(input, () => input.value === opts.groupName, t('steps.typed.why'), 'step-typed-go');
    const form = h('form', {}, field(t('steps.typed.label', { name: opts.groupName }), input), why, btn);
    const card = stepCard('typed_name', t('req.method.typed_name'), form);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (input.value !== opts.groupName) return;
      markDone(card);
      resolve({ typed_name: input.value });
    });
    list.append(card);
    input.focus();
  });
}

function passwordStep(list) {
  return new Promise((resolve) => {
    const input = h('input', { type: 'password', name: 'password', id: 'step-password-input', autocomplete: 'current-password' });
    const [btn, why] = gated(input, () => input.value !== '', t('steps.password.why'), 'step-password-go');
    const form = h('form', {}, field(t('steps.password.label'), input), why, btn);
    const card = stepCard('password', t('req.method.password'), form);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (!input.value) return;
      markDone(card);
      resolve({ password: input.value });
    });
    list.append(card);
    input.focus();
  });
}

// A challenge of method for the action, approved with this device's passkey.
function passkeyStep(list, opts, method, intro) {
  return new Promise((resolve) => {
    const slot = h('div', { 'aria-live': 'polite' });
    const btn = h('button', { type: 'button', id: `step-passkey-go-${method}` }, t('steps.passkey.button'));
    const card = stepCard(method === 'qr' ? 'qr-here' : 'device_key', t('steps.passkey.title'),
      h('p', {}, intro || t('steps.passkey.intro')), btn, slot);
    list.append(card);
    if (!supported()) {
      btn.remove();
      slot.replaceChildren(h('p', { class: 'error', role: 'alert', id: 'passkey-unsupported' }, t('steps.passkey.unsupported')));
      return;
    }
    btn.addEventListener('click', async () => {
      btn.disabled = true;
      slot.replaceChildren();
      try {
        const ch = await api.post('/v1/challenges', {
          action: opts.action, group: opts.group, params_digest: opts.digest, method: 'device_key',
        });
        await approveWithPasskey(ch.id);
        markDone(card);
        resolve(ch.id);
      } catch (e) {
        const err = passkeyError(e);
        slot.replaceChildren(err.code === 'DEVICE_NOT_TRUSTED' || err.code === 'PASSKEY_NOT_FOUND'
          ? h('p', { class: 'error', role: 'alert', id: 'passkey-none' }, t('steps.passkey.none'), ' ',
            h('a', { href: '#/me/security' }, t('steps.passkey.setup_link')))
          : errorBox(err));
        btn.disabled = false;
        btn.textContent = t('steps.passkey.retry');
        btn.focus();
      }
    });
  });
}

// A QR code for another device; resolves with the challenge id once it is approved.
async function qrStep(list, opts) {
  const k = await keys();
  // A phone showing a code to itself helps nobody: with a passkey here, approve here.
  if (k.passkeyHere && (narrow() || !k.otherDevice)) {
    const here = passkeyStep(list, opts, 'qr', t('steps.narrow_intro'));
    const title = list.lastElementChild.querySelector('h3');
    title.textContent = t('steps.narrow');
    if (!k.otherDevice) return here;
    // On a narrow screen a code for another device is still on offer.
    const alt = h('button', { type: 'button', class: 'link', id: 'step-show-qr' }, t('steps.show_qr'));
    list.lastElementChild.append(alt);
    return new Promise((resolve, reject) => {
      here.then(resolve);
      alt.addEventListener('click', () => {
        list.lastElementChild.remove();
        qrCode(list, opts).then(resolve, reject);
      });
    });
  }
  if (!k.otherDevice) throw new ApiError(403, { code: 'DEVICE_NOT_TRUSTED' });
  return qrCode(list, opts);
}

async function qrCode(list, opts) {
  const ch = await api.post('/v1/challenges', {
    action: opts.action, group: opts.group, method: 'qr', params_digest: opts.digest,
  });
  const svg = await api.get(`/v1/challenges/${enc(ch.id)}/qr.svg`, { text: true });
  const state = h('p', { id: 'qr-state', role: 'status' }, t('qr.waiting'));
  const card = h('li', { class: 'step card qr', id: 'qr', 'aria-labelledby': 'qr-title', 'data-challenge': ch.id, 'data-method': 'qr' },
    h('h3', { id: 'qr-title', tabindex: -1 }, t('qr.title')),
    h('p', {}, t('qr.intro', { until: when(ch.expires_at) })),
    h('img', { src: 'data:image/svg+xml;base64,' + btoa(svg), alt: t('qr.alt'), width: 220, height: 220, id: 'qr-image' }),
    h('p', { class: 'small' }, t('qr.link'), ' ', h('code', { id: 'qr-link' }, ch.approve_url)),
    state);
  list.append(card);
  card.querySelector('#qr-title').focus();
  return new Promise((resolve, reject) => {
    const ttl = Math.max(5, (ch.expires_at - ch.created_at) || 120) * 1000;
    const timer = setTimeout(() => outcome('expired'), ttl);
    const stop = followChallenge(ch.id, (s) => outcome(s));
    opts.ctx?.onLeave(() => {
      clearTimeout(timer);
      stop();
    });
    function outcome(s) {
      clearTimeout(timer);
      stop();
      if (s === 'approved') {
        state.textContent = t('qr.approved');
        card.classList.add('done');
        resolve(ch.id);
      } else if (s === 'declined') {
        state.textContent = t('steps.qr.declined');
        reject(new ApiError(409, { code: 'CHALLENGE_DECLINED' }));
      } else {
        state.textContent = t('qr.expired');
        reject(new ApiError(410, { code: 'CHALLENGE_EXPIRED' }));
      }
    }
  });
}

// TOTP: enrol first when the account has no active authenticator (POST /v1/me/totp
// answers 409 TOTP_ALREADY_ACTIVE when it has one), then a fresh code for the action.
async function totpStep(list) {
  const card = stepCard('totp', t('steps.totp.title'));
  list.append(card);
  let enrol = null;
  try {
    enrol = await api.post('/v1/me/totp', {});
  } catch (e) {
    if (e.code !== 'TOTP_ALREADY_ACTIVE') throw e;
  }
  if (enrol) await totpEnrol(card, enrol);
  return new Promise((resolve) => {
    const input = h('input', { name: 'totp-code', id: 'step-totp-input', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: 8 });
    const [btn, why] = gated(input, () => /^\d{6,8}$/.test(input.value.trim()), t('steps.totp.why'), 'step-totp-go');
    const form = h('form', { id: 'step-totp-form' }, field(t('steps.totp.code'), input), why, btn);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (!/^\d{6,8}$/.test(input.value.trim())) return;
      markDone(card);
      resolve({ totp_code: input.value.trim() });
    });
    card.append(form);
    input.focus();
  });
}

function totpEnrol(card, enrol) {
  return new Promise((resolve) => {
    const code = h('input', { name: 'totp-enrol-code', id: 'totp-enrol-code', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: 8 });
    const slot = h('div', { 'aria-live': 'polite' });
    const [btn, why] = gated(code, () => /^\d{6,8}$/.test(code.value.trim()), t('steps.totp.why'), 'totp-enrol-go');
    btn.textContent = t('steps.totp.confirm');
    const form = h('form', { id: 'totp-enrol', 'aria-labelledby': 'totp-enrol-title' },
      h('h4', { id: 'totp-enrol-title' }, t('steps.totp.enrol_title')),
      h('p', {}, t('steps.totp.enrol_intro')),
      h('img', { src: 'data:image/svg+xml;base64,' + btoa(enrol.qr_svg), alt: t('steps.totp.qr_alt'), width: 200, height: 200, id: 'totp-qr' }),
      h('p', { class: 'small' }, t('steps.totp.secret'), ' ', h('code', { id: 'totp-secret' }, enrol.secret)),
      field(t('steps.totp.code'), code), why, btn, slot);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      btn.disabled = true;
      slot.replaceChildren();
      try {
        await api.post('/v1/me/totp/confirm', { code: code.value.trim() });
      } catch (e) {
        slot.replaceChildren(errorBox(e));
        btn.disabled = false;
        code.focus();
        return;
      }
      form.replaceWith(h('p', { class: 'ok', id: 'totp-enrolled', role: 'status' }, t('steps.totp.enrolled')));
      resolve();
    });
    card.append(form);
    code.focus();
  });
}

// One method's proof, as body members.  Challenges fill challenge_id, then
// step_up_challenge_id.
async function prove(method, list, opts, body) {
  const challenge = (id) => {
    if (!body.challenge_id) body.challenge_id = id;
    else body.step_up_challenge_id = id;
  };
  switch (method) {
    case 'confirm':
      if (!opts.token) throw new ApiError(428, { code: 'CONFIRMATION_REQUIRED', detail: t('steps.no_token') });
      body.confirmation_token = opts.token;
      return;
    case 'typed_name':
      if (opts.typedName === opts.groupName) body.typed_name = opts.typedName;
      else Object.assign(body, await typedStep(list, opts));
      return;
    case 'password':
      if (opts.password) body.password = opts.password;
      else Object.assign(body, await passwordStep(list));
      return;
    case 'qr':
      challenge(await qrStep(list, opts));
      return;
    case 'device_key':
      challenge(await passkeyStep(list, opts, 'device_key'));
      return;
    case 'totp':
      Object.assign(body, await totpStep(list));
      return;
    default:
      throw new ApiError(428, { code: 'VERIFICATION_REQUIRED', requirements: 'unknown' });
  }
}

// Which of any_of to do: a radio choice, the first this browser can do preselected.
function choose(list, methods) {
  return new Promise((resolve) => {
    const first = methods.find((m) => m !== 'device_key' || supported()) ?? methods[0];
    const form = h('form', { id: 'step-choice' },
      h('fieldset', { class: 'choice' }, h('legend', {}, t('steps.choose')),
        methods.map((m) => h('label', {},
          h('input', { type: 'radio', name: 'step-method', value: m, checked: m === first }), ' ', t('req.method.' + m)))),
      h('button', { type: 'submit', id: 'step-choice-go' }, t('steps.continue')));
    const card = stepCard('choice', t('steps.choose'), form);
    card.querySelector('h3').remove(); // the legend says it
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const m = form.querySelector('input[name=step-method]:checked').value;
      markDone(card);
      resolve(m);
    });
    list.append(card);
    form.querySelector('input:checked').focus();
  });
}

// Render the steps for reqs into slot and resolve with the proof members.  opts:
// {action, group, digest, groupName, token, typedName, password, ctx}; members already
// proven (opts.have) are kept and their methods skipped.  Rejects with an ApiError when
// a step cannot be done (its code is shown by the caller), with requirements set to the
// original shape when the shape is unknown.
export async function collectProofs(slot, reqs, opts) {
  const plan = planOf(reqs);
  if (!plan) throw new ApiError(428, { code: 'VERIFICATION_REQUIRED', requirements: reqs ?? null });
  if (plan.denied) {
    slot.replaceChildren(h('p', { class: 'error', role: 'alert', id: 'steps-denied' }, t('steps.denied')));
    throw new ApiError(403, { code: 'RISK_DENIED' });
  }
  // A second set of steps (what a 428 adds) gets ids of its own.
  const sfx = opts.idSuffix || '';
  const list = h('ol', { class: 'steps', id: 'steps' + sfx });
  slot.replaceChildren(h('section', { class: 'card', 'aria-labelledby': 'steps-title' + sfx },
    h('h2', { id: 'steps-title' + sfx }, t(sfx ? 'steps.more_title' : 'steps.title')), h('p', { class: 'small' }, t('steps.intro')),
    plan.review ? h('p', { class: 'small', id: 'steps-review' }, t('steps.review')) : null, list));
  const body = { ...(opts.have || {}) };
  const done = new Set(opts.skip || []);
  try {
    for (const m of plan.all) {
      if (done.has(m)) continue;
      await prove(m, list, opts, body);
      done.add(m);
    }
    // A step-up is a proof beyond those above, whatever they were: always one more.
    if (plan.anyOf.length) {
      const m = plan.anyOf.length === 1 ? plan.anyOf[0] : await choose(list, plan.anyOf);
      await prove(m, list, opts, body);
    }
  } catch (e) {
    // The first step could not even be shown (no device to approve on): no empty
    // "Complete each step" card above the caller's words for why.
    if (!list.children.length) slot.replaceChildren();
    throw e;
  }
  return body;
}

// Send an action with the proofs reqs name (none when reqs is null: the action is tried
// as it is), and when the answer is a 428 that names more (a step-up, a password), add
// those steps under slot and send again with everything proven so far — at most three
// times.  send(proofs) makes the request; resolves with its answer, rejects with the
// ApiError the caller shows (errorBox).
export async function sendWithProofs(slot, reqs, opts, send) {
  const list = h('div');
  slot.replaceChildren(list);
  let proofs = reqs == null ? { ...(opts.have || {}) } : await collectProofs(list, reqs, opts);
  const first = planOf(reqs);
  for (let round = 0; ; round++) {
    try {
      return await send(proofs);
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 428 || e.problem.requirements === undefined || round >= 3) throw e;
      const done = Object.keys(proofs).map((k) => ({
        confirmation_token: 'confirm', typed_name: 'typed_name', password: 'password', totp_code: 'totp',
      })[k]).filter(Boolean);
      if (proofs.challenge_id) done.push(first?.all.includes('qr') ? 'qr' : 'device_key');
      // Steps after nothing was asked are the first ones, not "one more".
      const firstAsk = reqs == null && round === 0;
      const more = h('div', { id: firstAsk ? 'first-steps' : 'more-steps' + (round || '') });
      slot.append(more);
      proofs = await collectProofs(more, e.problem.requirements,
        { ...opts, have: proofs, skip: done, idSuffix: firstAsk ? '' : '-more' + (round || '') });
    }
  }
}
