// SPDX-License-Identifier: MIT
// The dissolve flow, built so that an accidental dissolution is hard:
//   1. choose keep / delete for the messages and ask for the impact preview;
//   2. read the impact (members, messages, files, payments, bill lines, each with its
//      rule), the delay and why, the approvals needed and from whom, the requirements;
//   3. type the group's name exactly: the button stays disabled until it matches;
//   4. the platform's verification, which on the web is a QR challenge: the console
//      asks for a `qr` challenge bound to the action, the group and the digest of the
//      parameters, shows its QR code (and its qun:// link as text), and waits until
//      another trusted device of the same user (the phone) approves it;
//   5. the request carries the preview's confirmation_token and the challenge_id, then
//      the countdown page (dissolutionView) shows the time left with a Cancel button.
// Archive then dissolve: age recipients given in step 1 go into the parameters
// ("archive": {"recipients": [...]}), so the preview, the token and the phone's approval
// all cover them; the dissolution then waits (`archiving`, the group still active) until
// the archive is complete and ledgered.

import { api, ApiError, enc } from '../api.js';
import { duration, has, t, when } from '../i18n.js';
import { badge, busy, errorBox, field, h, requirementLines, toast } from '../ui.js';

// The rules are said in the reader's language from what the preview asked (messages:
// keep or delete) and the structured fields, never from the server's English `rule`.
function impactTable(impact, messages) {
  const rows = [
    ['diss.members', impact.members.count, ''],
    ['diss.messages', impact.messages.count, t(messages === 'delete' ? 'diss.rule.messages_delete' : 'diss.rule.messages_keep')
      + (impact.messages.masked_at_purge ? `; ${t('diss.rule.messages_masked')}` : '')],
    ['diss.files', `${impact.files.count} (${t('diss.bytes', { n: impact.files.bytes })})`, t('diss.rule.files')],
    ['diss.payments', impact.payments.count,
      `${t('diss.rule.payments')}; ${t('diss.retention', { duration: duration(impact.payments.retention_seconds) })}`],
    ['diss.bill_lines', impact.bill_lines.count, t('diss.rule.bill_lines')],
  ];
  // Exports and grants go with the purge; older servers do not list them.
  const held = (e, rule) => (e.held ? `${t(rule)}; ${t('diss.held')}` : t(rule));
  if (impact.exports) {
    rows.push(['diss.exports', `${impact.exports.count} (${t('diss.bytes', { n: impact.exports.bytes })})`,
      held(impact.exports, 'diss.exports_rule')]);
  }
  if (impact.grants) rows.push(['diss.grants', impact.grants.count, held(impact.grants, 'diss.grants_rule')]);
  return h('table', { class: 'impact', id: 'impact' },
    h('caption', {}, t('diss.impact')),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('diss.what')), h('th', { scope: 'col' }, t('diss.count')), h('th', { scope: 'col' }, t('diss.rule')))),
    h('tbody', {}, rows.map(([k, n, rule]) => h('tr', {}, h('th', { scope: 'row' }, t(k)), h('td', {}, String(n)), h('td', {}, rule)))));
}

// A delay's rule and the policy that set it, in the reader's words: the server sends
// keys (`cooling_off`, `kind:education`, `region:cn`), never sentences.
function ruleName(rule) {
  return has('diss.rule_name.' + rule) ? t('diss.rule_name.' + rule) : t('diss.rule_name.other');
}

function sourceName(source) {
  const [what, name] = String(source).split(':');
  if (what === 'kind' && name) return t('policy.source.kind', { kind: has('kind.' + name) ? t('kind.' + name) : name });
  if (what === 'region' && name) return t('policy.source.region', { region: name });
  return has('policy.source.' + what) ? t('policy.source.' + what) : t('policy.source.default');
}

// Who must approve, by name where the server gives one.
function approverLine(a) {
  if (a.kind === 'guardian') return t('approval.kind.guardian', { guardian: a.from_name ?? a.from, minor: a.for_minor_name ?? a.for_minor });
  return has('approval.kind.' + a.kind) ? t('approval.kind.' + a.kind) : t('approval.kind.other');
}

// An approval on the status page: who decides it, and how far it is.
function approvalKindName(a) {
  if (a.kind === 'guardian' && (a.subject_name || a.subject)) return t('approval.kind.guardian_of', { minor: a.subject_name ?? a.subject });
  return has('approval.kind.' + a.kind) ? t('approval.kind.' + a.kind) : t('approval.kind.other');
}

function approvalBadge(state) {
  return h('span', { class: `badge state-${state}`, 'data-state': state },
    has('approval.state.' + state) ? t('approval.state.' + state) : state);
}

function previewDetails(p, params) {
  const timing = p.timing;
  return h('div', { id: 'preview' },
    impactTable(p.impact, params.messages),
    h('h2', {}, t('diss.timing')),
    h('p', { id: 'delay' }, t('diss.delay', { delay: duration(timing.delay_seconds) })),
    h('ul', { id: 'delay-reasons' }, timing.delay_reasons.map((r) =>
      h('li', {}, t('diss.reason', { rule: ruleName(r.rule), duration: duration(r.seconds), source: sourceName(r.source) })))),
    h('h2', {}, t('diss.approvals')),
    p.approvals.length
      ? h('ul', { id: 'approvals-needed' }, p.approvals.map((a) => h('li', { 'data-kind': a.kind }, approverLine(a))))
      : h('p', { id: 'approvals-needed' }, t('diss.no_approvals')),
    h('h2', {}, t('diss.requirements')),
    h('ul', { id: 'requirements' }, (requirementLines(p.requirements) ?? [t('req.unexpected')]).map((l) => h('li', {}, l))));
}

// JSON with sorted keys and no spaces: the text qun_params_digest hashes on the server.
function canonical(v) {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

async function sha256hex(text) {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
  return Array.from(d, (x) => x.toString(16).padStart(2, '0')).join('');
}

export const QR_POLL_MS = 1000;

// Show a QR challenge for dissolving gid with params in slot and wait for its approval
// on another device.  Resolves with the challenge id once approved; rejects with the
// API error (DEVICE_NOT_TRUSTED: no other device with a key) or when it expires.
// ctx.onLeave stops the waiting when the user leaves the page.
async function qrApproval(gid, params, slot, ctx) {
  // Ask first whether a phone could approve at all (the server would refuse the
  // challenge with the same DEVICE_NOT_TRUSTED), so the owner is told at once.
  const devices = await api.get('/v1/me/devices');
  if (!devices.items.some((d) => d.has_key && !d.current)) {
    throw new ApiError(403, { code: 'DEVICE_NOT_TRUSTED', detail: t('qr.no_device') });
  }
  const ch = await api.post('/v1/challenges', {
    action: 'dissolve', group: gid, method: 'qr', params_digest: await sha256hex(canonical(params)),
  });
  const svg = await api.get(`/v1/challenges/${enc(ch.id)}/qr.svg`, { text: true });
  const link = `qun://challenge/${ch.id}?n=${ch.nonce}`;
  const state = h('p', { id: 'qr-state', role: 'status' }, t('qr.waiting'));
  slot.replaceChildren(h('section', { class: 'card qr', id: 'qr', 'aria-labelledby': 'qr-title', 'data-challenge': ch.id },
    h('h2', { id: 'qr-title', tabindex: -1 }, t('qr.title')),
    h('p', {}, t('qr.intro')),
    h('img', { src: 'data:image/svg+xml;base64,' + btoa(svg), alt: t('qr.alt'), width: 220, height: 220, id: 'qr-image' }),
    h('p', { class: 'small' }, t('qr.link'), ' ', h('code', { id: 'qr-link' }, link)),
    state));
  // The pressed button is disabled now: the keyboard's focus goes to what comes next.
  slot.querySelector('#qr-title').focus();
  return new Promise((resolve, reject) => {
    let timer = null;
    let done = false;
    ctx.onLeave(() => {
      done = true;
      clearTimeout(timer);
    });
    async function check() {
      if (done) return;
      try {
        const c = await api.get(`/v1/challenges/${enc(ch.id)}`);
        if (c.state === 'approved') {
          done = true;
          state.textContent = t('qr.approved');
          resolve(ch.id);
          return;
        }
        if (c.state !== 'pending') {
          done = true;
          state.textContent = t('qr.expired');
          reject(new ApiError(410, { code: 'CHALLENGE_EXPIRED', detail: t('qr.expired') }));
          return;
        }
      } catch (e) {
        done = true;
        reject(e);
        return;
      }
      timer = setTimeout(check, QR_POLL_MS);
    }
    check();
  });
}

export async function dissolveView([gid], ctx) {
  const base = `/v1/groups/${enc(gid)}`;
  const g = await api.get(base);
  const choice = h('fieldset', { class: 'choice' },
    h('legend', {}, t('diss.messages_choice')),
    ['keep', 'delete'].map((v) => h('label', {},
      h('input', { type: 'radio', name: 'messages', value: v, checked: v === 'keep' }), ' ', t('diss.' + v))));
  const recipients = h('input', {
    name: 'archive-recipients', id: 'archive-recipients', autocomplete: 'off', spellcheck: 'false',
    maxlength: 2000, placeholder: 'age1…',
  });
  const previewBtn = h('button', { type: 'submit', id: 'preview-btn' }, t('diss.preview'));
  const previewSlot = h('div', { 'aria-live': 'polite' });
  const errSlot = h('div');
  const form = h('form', { class: 'card' }, choice,
    field(t('diss.archive_label'), recipients, t('diss.archive_hint')), previewBtn, errSlot);

  form.addEventListener('submit', busy(previewBtn, errSlot, async () => {
    const params = { messages: form.querySelector('input[name=messages]:checked').value };
    const list = recipients.value.split(/[\s,]+/).filter(Boolean);
    if (list.length) params.archive = { recipients: list };
    const p = await api.post(`${base}/dissolution/preview`, params);
    showConfirm(p, params);
  }));
  // Changing the choice invalidates a preview: its token is bound to the parameters.
  choice.addEventListener('change', () => previewSlot.replaceChildren());
  recipients.addEventListener('input', () => previewSlot.replaceChildren());

  function showConfirm(p, params) {
    const typed = h('input', { name: 'confirm-name', id: 'confirm-name', autocomplete: 'off', spellcheck: false });
    const needPassword = Array.isArray(p.requirements) && p.requirements.some((r) => r?.method === 'password');
    const password = needPassword ? h('input', { type: 'password', name: 'password', autocomplete: 'current-password' }) : null;
    const go = h('button', { type: 'submit', class: 'danger', id: 'dissolve-btn', disabled: true }, t('diss.request'));
    const slot = h('div');
    const qrSlot = h('div', { 'aria-live': 'polite' });
    const update = () => {
      go.disabled = typed.value !== p.name || (needPassword && !password.value);
    };
    typed.addEventListener('input', update);
    password?.addEventListener('input', update);
    const confirm = h('form', { class: 'card confirm' },
      field(t('diss.confirm_label', { name: p.name }), typed),
      password ? field(t('diss.password'), password) : null,
      go, qrSlot, slot);
    confirm.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (typed.value !== p.name) return; // the button is disabled too; Enter must not bypass it
      go.disabled = true;
      typed.readOnly = true; // the name and the choice are what the phone approves
      slot.replaceChildren();
      try {
        const challengeId = await qrApproval(gid, p.params, qrSlot, ctx);
        const body = { ...params, confirmation_token: p.confirmation_token, challenge_id: challengeId };
        if (password) body.password = password.value;
        await api.post(`${base}/dissolution`, body);
        toast(t('diss.requested'));
        location.hash = `#/g/${gid}/dissolution`;
      } catch (e) {
        // Whatever the answer, the form comes back: the name can be typed again and the
        // button pressed again (a refused request spent no token or challenge).
        slot.replaceChildren(e.code === 'DEVICE_NOT_TRUSTED'
          ? h('p', { class: 'error', role: 'alert', id: 'qr-no-device' }, t('qr.no_device'))
          : errorBox(e));
        if (e instanceof ApiError && e.problem.requirements !== undefined) {
          qrSlot.querySelector('#qr-state')?.replaceChildren(t('qr.more_needed'));
        }
        typed.readOnly = false;
        update();
        (go.disabled ? typed : go).focus(); // disabling the button dropped the focus
      }
    });
    previewSlot.replaceChildren(previewDetails(p, params), confirm);
    typed.focus();
  }

  return h('div', {},
    h('h1', {}, t('diss.title', { name: g.name })),
    h('p', { class: 'warning' }, t('diss.intro')),
    form, previewSlot);
}

// The dissolution's status with a live countdown, refreshed from the server.
export async function dissolutionView([gid], ctx) {
  const base = `/v1/groups/${enc(gid)}`;
  const g = await api.get(base).catch(() => ({ name: gid, my_role: 'member' }));
  const body = h('div', { id: 'dissolution' });
  let status = null;
  let fetchedAt = 0;

  function paint() {
    if (!status) {
      body.replaceChildren(h('p', {}, t('status.none')));
      return;
    }
    const left = status.seconds_left !== undefined ? status.seconds_left - (Date.now() - fetchedAt) / 1000 : null;
    const slot = h('div');
    const cancel = h('button', { type: 'button', class: 'danger', id: 'cancel-btn' }, t('status.cancel'));
    cancel.addEventListener('click', busy(cancel, slot, async () => {
      status = await api.del(`${base}/dissolution`);
      fetchedAt = Date.now();
      toast(t('status.cancelled'));
      paint();
    }));
    const cancellable = g.my_role === 'owner' &&
      (status.state === 'pending' || status.state === 'review' || status.dissolution_state === 'archiving');
    body.replaceChildren(h('div', {}, // h() skips the null parts; replaceChildren would print them
      h('p', { class: 'big' }, badge(status.state)),
      left !== null ? h('p', { class: 'countdown', id: 'countdown', role: 'timer', 'aria-live': 'off' },
        t('status.countdown', { left: duration(left) })) : null,
      h('dl', { class: 'card' },
        h('dt', {}, t('status.state')), h('dd', { id: 'dissolution-state' }, t('state.' + status.dissolution_state)),
        status.due_at ? [h('dt', {}, t('status.due')), h('dd', {}, when(status.due_at))] : null,
        status.dissolved_at ? [h('dt', {}, t('status.dissolved_at')), h('dd', {}, when(status.dissolved_at))] : null,
        status.grace_until ? [h('dt', {}, t('status.grace_until')), h('dd', {}, when(status.grace_until))] : null,
        status.archive ? [h('dt', {}, t('status.archive')), h('dd', { id: 'archive-state' },
          t('status.archive_line', { export: status.archive.export, state: status.archive.state }),
          status.archive.digest ? h('code', { class: 'small' }, ` sha256 ${status.archive.digest.slice(0, 16)}…`) : null,
          status.archive.error ? ` — ${status.archive.error}` : '')] : null),
      status.approvals.length ? [h('h2', {}, t('status.approvals')), h('ul', {}, status.approvals.map((a) =>
        h('li', { 'data-kind': a.kind }, `${approvalKindName(a)}: `, approvalBadge(a.state), a.reason ? ` — ${a.reason}` : '')))] : null,
      cancellable ? cancel : null, slot));
  }
  async function load() {
    try {
      status = await api.get(`${base}/dissolution`);
    } catch (e) {
      if (e.code !== 'DISSOLUTION_NOT_FOUND') throw e;
      status = null;
    }
    fetchedAt = Date.now();
  }
  await load();
  paint();
  // Repaint the countdown every second (only its text, so focus stays put), and
  // refresh from the server every 3 s: timers run there, and the test clock moves.
  const tick = setInterval(() => {
    const c = body.querySelector('#countdown');
    if (c && status?.seconds_left !== undefined) {
      c.textContent = t('status.countdown', { left: duration(status.seconds_left - (Date.now() - fetchedAt) / 1000) });
    }
  }, 1000);
  const refresh = setInterval(async () => {
    const before = JSON.stringify([status?.state, status?.dissolution_state]);
    try {
      await load();
    } catch {
      return;
    }
    if (JSON.stringify([status?.state, status?.dissolution_state]) !== before && ctx.current()) {
      const focused = document.activeElement?.id;
      paint();
      if (focused) document.getElementById(focused)?.focus();
    }
  }, 3000);
  ctx.onLeave(() => {
    clearInterval(tick);
    clearInterval(refresh);
  });
  return h('div', {},
    h('h1', {}, t('status.title', { name: g.name })),
    body,
    h('p', {}, h('a', { href: `#/g/${gid}` }, t('status.back'))));
}
