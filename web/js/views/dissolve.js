// SPDX-License-Identifier: MIT
// The dissolve flow, built so that an accidental dissolution is hard:
//   1. choose keep / delete for the messages and ask for the impact preview;
//   2. read the impact (members, messages, files, payments, bill lines, each with its
//      rule), the delay and why, the approvals needed and from whom, the requirements;
//   3. type the group's name exactly: the button stays disabled until it matches;
//   4. the verification the preview's `requirements` name, as steps (proofs.js): on the
//      web a QR challenge bound to the action, the group and the digest of the
//      parameters, whose code (its approve_url) the phone opens and approves with its
//      passkey — the outcome arrives over the event stream — or, on a narrow screen
//      with a passkey here, "approve on this device with your passkey";
//   5. the request carries the proofs; a 428 that asks for more (a risk step-up: one of
//      passkey or authenticator code) adds the steps it names and the request goes
//      again by itself with the same, unspent, approval; then the countdown page
//      (dissolutionView) shows the time left with a Cancel button.
// Archive then dissolve: age recipients given in step 1 go into the parameters
// ("archive": {"recipients": [...]}), so the preview, the token and the phone's approval
// all cover them; the dissolution then waits (`archiving`, the group still active) until
// the archive is complete and ledgered.

import { api, ApiError, enc } from '../api.js';
import { count, duration, has, t, when } from '../i18n.js';
import { badge, busy, errorBox, field, h, requirementLines, toast } from '../ui.js';
import { canonical, collectProofs, sha256hex } from '../proofs.js';
import { humanSize } from './files.js';

// The rules are said in the reader's language from what the preview asked (messages:
// keep or delete) and the structured fields, never from the server's English `rule`.
function impactTable(impact, messages) {
  const rows = [
    ['diss.members', impact.members.count, ''],
    ['diss.messages', impact.messages.count, t(messages === 'delete' ? 'diss.rule.messages_delete' : 'diss.rule.messages_keep')
      + (impact.messages.masked_at_purge ? t('punct.semicolon') + t('diss.rule.messages_masked') : '')],
    ['diss.files', t('count.with_size', { count: impact.files.count, size: humanSize(impact.files.bytes) }), t('diss.rule.files')],
    ['diss.payments', impact.payments.count,
      t('diss.rule.payments', { duration: duration(impact.payments.retention_seconds) })],
    ['diss.bill_lines', impact.bill_lines.count, t('diss.rule.bill_lines')],
  ];
  // Exports and grants go with the purge; older servers do not list them.
  const held = (e, rule) => (e.held ? t(rule) + t('punct.semicolon') + t('diss.held') : t(rule));
  if (impact.exports) {
    rows.push(['diss.exports', t('count.with_size', { count: impact.exports.count, size: humanSize(impact.exports.bytes) }),
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
// The server's `from` is pinned English; `from_code` with `from_params` is what is said.
function approverLine(a) {
  const fp = a.from_params || {};
  if (a.from_code && has('approval.from.' + a.from_code) && (a.from_code !== 'guardian' || (fp.guardian && fp.minor))) {
    return t('approval.from.' + a.from_code, fp);
  }
  if (a.kind === 'guardian') return t('approval.kind.guardian', { guardian: a.from_name ?? a.from, minor: a.for_minor_name ?? a.for_minor });
  return has('approval.kind.' + a.kind) ? t('approval.kind.' + a.kind) : t('approval.kind.other');
}

// An approval on the status page: who decides it, and how far it is.
function approvalKindName(a) {
  if (a.kind === 'guardian' && (a.subject_name || a.subject)) return t('approval.kind.guardian_of', { minor: a.subject_name ?? a.subject });
  if ((a.kind === 'org_admin' || a.kind === 'school_admin') && a.org_name) return t('approval.kind.admin_of', { org: a.org_name });
  return has('approval.kind.' + a.kind) ? t('approval.kind.' + a.kind) : t('approval.kind.other');
}

// The purge's receipt: the counts always shown first (the messages when the owner chose
// to delete them, else a line saying they were kept), the others when the purge had any.
const RECEIPT_ALWAYS = ['messages_deleted', 'files_removed', 'members_removed'];
const RECEIPT_SOME = ['blobs_released', 'cdn_purges_queued', 'media_deleted', 'exports_deleted', 'grants_deleted',
  'invitations_deleted', 'masked_phones', 'masked_national_ids', 'masked_bank_cards', 'payments_deleted'];

function receiptCard(status) {
  const receipt = status.receipt;
  const kept = status.messages === 'keep';
  const rows = [...RECEIPT_ALWAYS.filter((k) => !(kept && k === 'messages_deleted')),
    ...RECEIPT_SOME.filter((k) => receipt[k] > 0)];
  return [h('h2', {}, t('status.receipt')),
    h('dl', { class: 'card', id: 'receipt' }, rows.map((k) =>
      [h('dt', {}, t('receipt.' + k)), h('dd', { 'data-count': k }, count(receipt[k] ?? 0))])),
    kept ? h('p', { id: 'messages-kept' }, t('status.messages_kept')) : null];
}

// While the purge runs: how far it is; once the message rows are gone, how many.  A purge
// that failed its attempts says so instead.
function purgeLine(status) {
  const job = status.jobs.find((j) => j.kind === 'purge_group' && j.state !== 'done');
  if (job?.state === 'failed') return h('p', { id: 'purge-failed', role: 'alert' }, t('status.purge_failed'));
  return job ? h('p', { id: 'purge-progress', role: 'status' },
    t('status.purging', { messages: count(job.progress?.messages_deleted ?? 0) })) : null;
}

// Payments kept past the purge, for the retention the rules ask of them.
function paymentsLine(status) {
  const job = status.jobs.find((j) => j.kind === 'purge_payments' && j.state !== 'done');
  return job ? h('p', { id: 'payments-kept' }, t('status.payments_kept', { when: when(job.due_at) })) : null;
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
    // A name typed that does not match says so, rather than a button that stays grey.
    const nameHint = h('p', { class: 'hint', id: 'confirm-name-hint', 'aria-live': 'polite' });
    const update = () => {
      go.disabled = typed.value !== p.name || (needPassword && !password.value);
      nameHint.textContent = typed.value && typed.value !== p.name ? t('diss.name_mismatch', { name: p.name }) : '';
    };
    typed.addEventListener('input', update);
    password?.addEventListener('input', update);
    // While the steps run the button waits for them, and says so.
    const why = h('p', { class: 'hint', id: 'dissolve-why', hidden: true }, t('diss.steps_running'));
    go.setAttribute('aria-describedby', why.id);
    const confirm = h('form', { class: 'card confirm' },
      field(t('diss.confirm_label', { name: p.name }), typed), nameHint,
      password ? field(t('diss.password'), password) : null,
      go, why, qrSlot, slot);
    let attempt = 0;
    confirm.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (typed.value !== p.name) return; // the button is disabled too; Enter must not bypass it
      const run = ++attempt; // pressing again starts over; an older run stops at its next step
      go.disabled = true;
      why.hidden = false;
      typed.readOnly = true; // the name and the choice are what the phone approves
      slot.replaceChildren();
      const opts = {
        action: 'dissolve', group: gid, digest: p.params_digest ?? await sha256hex(canonical(p.params)),
        groupName: p.name, token: p.confirmation_token, typedName: typed.value, password: password?.value, ctx,
        have: { confirmation_token: p.confirmation_token }, // the request always carries the preview's token
      };
      const reopen = () => {
        typed.readOnly = false;
        why.hidden = true;
        update();
      };
      try {
        let proofs = await collectProofs(qrSlot, p.requirements, opts);
        for (let round = 0; ; round++) {
          if (run !== attempt) return;
          try {
            await api.post(`${base}/dissolution`, { ...params, ...proofs });
            break;
          } catch (e) {
            if (!(e instanceof ApiError) || e.status !== 428 || e.problem.requirements === undefined || round >= 3) throw e;
            // More is needed (a risk step-up): the QR line says so, the form comes back,
            // and the steps still to do follow; once they are done the request goes again
            // by itself.  Not an error, and not the whole list again with the QR step
            // just done in it.
            qrSlot.querySelector('#qr-state')?.replaceChildren(t('qr.more_needed'));
            const more = h('div', { id: 'more-steps' });
            slot.replaceChildren(more);
            reopen();
            const done = Object.keys(proofs).map((k) => ({
              confirmation_token: 'confirm', typed_name: 'typed_name', password: 'password', totp_code: 'totp',
            })[k]).filter(Boolean);
            // The first challenge answered the QR step (a code, or this device's passkey
            // standing in for it) or the passkey step.
            if (proofs.challenge_id) done.push(qrSlot.querySelector('#qr, #step-qr-here') ? 'qr' : 'device_key');
            proofs = await collectProofs(more, e.problem.requirements, { ...opts, have: proofs, skip: done, idSuffix: '-more' });
            if (run !== attempt) return;
            go.disabled = true;
            why.hidden = false;
            typed.readOnly = true;
          }
        }
        toast(t('diss.requested'));
        location.hash = `#/g/${gid}/dissolution`;
      } catch (e) {
        if (run !== attempt) return;
        // Whatever the answer, the form comes back: the name can be typed again and the
        // button pressed again (a refused request spent no token or challenge).
        slot.replaceChildren(e.code === 'DEVICE_NOT_TRUSTED'
          ? h('p', { class: 'error', role: 'alert', id: 'qr-no-device' }, t('qr.no_device'), ' ',
            h('a', { href: '#/me/security' }, t('steps.passkey.setup_link')))
          : errorBox(e));
        if (e instanceof ApiError && e.problem.requirements !== undefined) {
          qrSlot.querySelector('#qr-state')?.replaceChildren(t('qr.more_needed'));
        }
        reopen();
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
        // "Dissolves at" only while it still will: a cancelled or done dissolution keeps its
        // due_at, and a parent reading it there would think the group is still going.
        status.due_at && left !== null ? [h('dt', {}, t('status.due')), h('dd', {}, when(status.due_at))] : null,
        status.dissolved_at ? [h('dt', {}, t('status.dissolved_at')), h('dd', {}, when(status.dissolved_at))] : null,
        status.grace_until && status.state === 'dissolved'
          ? [h('dt', {}, t('status.grace_until')), h('dd', {}, when(status.grace_until))] : null,
        status.purged_at ? [h('dt', {}, t('status.purged_at')), h('dd', { id: 'purged-at' }, when(status.purged_at))] : null,
        // The archive in words, never its id or the server's English error; its SHA-256 is
        // what an auditor compares with the ledger entry, so it stays, named.
        status.archive ? [h('dt', {}, t('status.archive')), h('dd', { id: 'archive-state', 'data-state': status.archive.state },
          t('status.archive.' + status.archive.state),
          status.archive.digest ? h('span', { class: 'muted small digest' }, ' ',
            t('status.archive_digest', { digest: status.archive.digest.slice(0, 16) + '…' })) : null)] : null),
      status.held && status.state !== 'purged' ? h('p', { id: 'held-line' }, t('status.held')) : null,
      status.state === 'purging' ? purgeLine(status) : null,
      status.state === 'purged' ? receiptCard(status) : null,
      status.state === 'purging' || status.state === 'purged' ? paymentsLine(status) : null,
      status.approvals.length ? [h('h2', {}, t('status.approvals')), h('ul', {}, status.approvals.map((a) =>
        h('li', { 'data-kind': a.kind }, approvalKindName(a) + t('punct.colon'), approvalBadge(a.state), a.reason ? ` — ${a.reason}` : '')))] : null,
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
    const seen = (s) => JSON.stringify([s?.state, s?.dissolution_state, s?.held,
      ...(s?.jobs ?? []).filter((j) => j.kind === 'purge_group').map((j) => [j.state, j.progress?.messages_deleted])]);
    const before = seen(status);
    try {
      await load();
    } catch {
      return;
    }
    if (seen(status) !== before && ctx.current()) {
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
