// SPDX-License-Identifier: MIT
// Red packets and the personal bill in the console.  Amounts travel as integers in fen
// (the smallest unit, docs/api.md) and are shown in yuan, "¥8.88", as `qun bill` shows
// them.  Each red packet appears in the group's history as a card (who sent it, how many
// shares are claimed, who claimed what) with a one-tap claim; the payments card holds
// the send form; #/bill lists the person's bill lines by group name.

import { api, enc, session } from '../api.js';
import { addWords, t, when } from '../i18n.js';
import { busy, errorBox, field, h, toast } from '../ui.js';

addWords({
  en: {
    'nav.bill': 'Bill',
    'pay.send_title': 'Send a red packet',
    'pay.amount': 'Total amount (¥)',
    'pay.amount_hint': 'From ¥0.01 to ¥1,000,000.00, split equally; the last share takes what is left.',
    'pay.shares': 'Number of shares',
    'pay.shares_hint': 'How many members can claim: 1 to 1000.',
    'pay.memo': 'Greeting',
    'pay.memo_hint': 'Optional, up to 200 characters.',
    'pay.memo_default': 'Best wishes',
    'pay.send': 'Send red packet',
    'pay.sent': 'Red packet of {amount} sent.',
    'pay.card': '{name} sent a red packet: {claimed} of {shares} claimed',
    'pay.card_total': '{amount} in total',
    'pay.claim': 'Claim',
    'pay.claim_label': 'Claim a share of the red packet from {name}',
    'pay.claimed_toast': 'You got {amount}.',
    'pay.you_got': 'You got {amount}',
    'pay.all_claimed': 'All shares claimed',
    'pay.claims': 'Who claimed what',
    'pay.claim_line': '{name}: {amount}',
    'pay.someone': 'a former member',
    'pay.bill_link': 'Your bill',
    'pay.err.amount': 'Enter an amount from ¥0.01 to ¥1,000,000.00, with at most two decimals.',
    'pay.err.shares': 'Enter a number of shares from 1 to 1000.',
    'pay.err.memo': 'The greeting can be at most 200 characters.',
    'pay.err.share_min': 'Each share must be worth at least ¥0.01: use fewer shares or a larger amount.',
    'bill.title': 'Your bill',
    'bill.intro': 'Every red packet you sent or claimed, in every group, including groups that are gone.',
    'bill.empty': 'Your bill is empty: no red packets sent or claimed yet.',
    'bill.when': 'When',
    'bill.group': 'Group',
    'bill.what': 'What',
    'bill.amount': 'Amount',
    'bill.total': 'Total',
    'bill.kind.red_packet_sent': 'Sent a red packet',
    'bill.kind.red_packet_received': 'Claimed from a red packet',
    'bill.kind.other': 'Other',
    'error.PAYMENT_NOT_FOUND': 'That red packet is not in this group.',
    'error.PAYMENT_EXHAUSTED': 'Every share of this red packet has been claimed.',
    'error.ALREADY_CLAIMED': 'You already claimed this red packet.',
  },
  zh: {
    'nav.bill': '账单',
    'pay.send_title': '发红包',
    'pay.amount': '总金额（元）',
    'pay.amount_hint': '¥0.01 至 ¥1,000,000.00，平均分配；最后一份领取剩余金额。',
    'pay.shares': '红包个数',
    'pay.shares_hint': '可领取的人数：1 至 1000。',
    'pay.memo': '祝福语',
    'pay.memo_hint': '可选，最多 200 个字符。',
    'pay.memo_default': '恭喜发财',
    'pay.send': '塞钱进红包',
    'pay.sent': '已发出 {amount} 的红包。',
    'pay.card': '{name} 发了一个红包：已领取 {claimed}/{shares} 个',
    'pay.card_total': '共 {amount}',
    'pay.claim': '领取',
    'pay.claim_label': '领取 {name} 发的红包',
    'pay.claimed_toast': '你领到了 {amount}。',
    'pay.you_got': '你领到了 {amount}',
    'pay.all_claimed': '红包已被领完',
    'pay.claims': '领取详情',
    'pay.claim_line': '{name}：{amount}',
    'pay.someone': '已离开的成员',
    'pay.bill_link': '我的账单',
    'pay.err.amount': '请输入 ¥0.01 至 ¥1,000,000.00 之间的金额，最多两位小数。',
    'pay.err.shares': '请输入 1 至 1000 之间的红包个数。',
    'pay.err.memo': '祝福语最多 200 个字符。',
    'pay.err.share_min': '每个红包至少 ¥0.01：请减少个数或增加金额。',
    'bill.title': '我的账单',
    'bill.intro': '你在所有群中发出和领取的每个红包，包括已解散的群。',
    'bill.empty': '账单为空：还没有发出或领取过红包。',
    'bill.when': '时间',
    'bill.group': '群',
    'bill.what': '类型',
    'bill.amount': '金额',
    'bill.total': '合计',
    'bill.kind.red_packet_sent': '发出红包',
    'bill.kind.red_packet_received': '领取红包',
    'bill.kind.other': '其他',
    'error.PAYMENT_NOT_FOUND': '本群中没有这个红包。',
    'error.PAYMENT_EXHAUSTED': '这个红包已被领完。',
    'error.ALREADY_CLAIMED': '你已经领过这个红包了。',
  },
});

// fen -> "¥8.88"; with sign, "+¥0.25" and "-¥5.00" (the bill).
export function money(fen, sign = false) {
  const abs = Math.abs(fen);
  const yuan = Math.floor(abs / 100).toLocaleString('en-US');
  const s = `¥${yuan}.${String(abs % 100).padStart(2, '0')}`;
  return fen < 0 ? '-' + s : sign && fen > 0 ? '+' + s : s;
}

// "8.88" (yuan, up to two decimals, commas allowed) -> 888 fen, or null.
export function parseYuan(text) {
  const m = /^(\d{1,7})(?:\.(\d{1,2}))?$/.exec(text.trim().replace(/[,，]/g, '').replace(/^[¥￥]/, ''));
  if (!m) return null;
  return Number(m[1]) * 100 + Number((m[2] || '').padEnd(2, '0'));
}

// A refusal of the send form as a sentence: a field the server names, else the code's words.
// (The server refuses more shares than fen as FIELD_INVALID on `shares` too.)
function sendError(e, fen, n) {
  const f = e.problem?.field;
  if ((e.code === 'FIELD_INVALID' || e.code === 'FIELD_MISSING') && ['amount', 'shares', 'memo'].includes(f)) {
    const key = f === 'shares' && n >= 1 && n <= 1000 && n > fen ? 'pay.err.share_min' : 'pay.err.' + f;
    return h('p', { class: 'error', role: 'alert', 'data-code': e.code, 'data-field': f }, t(key));
  }
  return errorBox(e);
}

const creatorName = (p, names) => p.creator_display_name || names.get(p.creator) || t('pay.someone');
const claimerName = (c) => c.claimer_display_name || c.claimer_username || t('pay.someone');

// When a history item (a message or a card) was made, in Unix seconds.
function itemTime(li) {
  if (li.dataset.at) return Number(li.dataset.at);
  const tm = li.querySelector('time');
  return tm ? Date.parse(tm.getAttribute('datetime')) / 1000 : 0;
}

// The red packets of group gid as cards in the history list `list`, kept up to date:
// refresh() reads the payments again: after a send or a claim, on the events
// payment.created and payment.claimed, and every few seconds while streaming() says the
// event stream is not flowing.  live: whether claims are still possible.
export function redPackets(gid, list, { names, live, onLeave, onChange, streaming = () => false }) {
  const base = `/v1/groups/${enc(gid)}`;
  function card(p) {
    const mine = (p.claims || []).find((c) => c.claimer === session.openid);
    const done = p.claimed_shares >= p.shares;
    const slot = h('div');
    let claim = null;
    if (live && !mine && !done) {
      claim = h('button', { type: 'button', class: 'claim', 'aria-label': t('pay.claim_label', { name: creatorName(p, names) }) },
        t('pay.claim'));
      claim.addEventListener('click', busy(claim, slot, async () => {
        const got = await api.post(`${base}/payments/${enc(p.id)}/claim`, {});
        toast(t('pay.claimed_toast', { amount: money(got.amount) }));
        await refresh();
      }));
    }
    const claims = p.claims || [];
    return h('li', { class: 'msg redpacket', 'data-pid': p.id, 'data-at': p.created_at },
      h('span', { class: 'who' }, h('span', { class: 'rp-icon', 'aria-hidden': 'true' }, '¥')),
      h('div', { class: 'rp-body' },
        h('p', { class: 'rp-title' }, t('pay.card', { name: creatorName(p, names), claimed: p.claimed_shares, shares: p.shares })),
        p.memo ? h('p', { class: 'rp-memo' }, p.memo) : null,
        h('p', { class: 'rp-total' }, t('pay.card_total', { amount: money(p.amount) }),
          mine ? [' · ', h('strong', { class: 'rp-mine' }, t('pay.you_got', { amount: money(mine.amount) }))] : null,
          done ? [' · ', h('span', { class: 'rp-done' }, t('pay.all_claimed'))] : null),
        claim, slot,
        claims.length ? h('details', { class: 'rp-claims' }, h('summary', {}, t('pay.claims')),
          h('ul', {}, claims.map((c) => h('li', { 'data-claimer': c.claimer },
            t('pay.claim_line', { name: claimerName(c), amount: money(c.amount) }))))) : null),
      h('time', { class: 'muted', datetime: new Date(p.created_at * 1000).toISOString() }, when(p.created_at)));
  }
  // Put el where its time places it among the history's items.
  function place(el) {
    const at = Number(el.dataset.at);
    const next = [...list.children].find((li) => li !== el && itemTime(li) > at);
    list.insertBefore(el, next || null);
  }
  let last = '';
  async function refresh() {
    let items;
    try {
      items = (await api.get(`${base}/payments`)).items;
    } catch {
      return; // the group view shows the group's own errors
    }
    const sig = JSON.stringify(items);
    if (sig === last) return;
    last = sig;
    let added = false;
    for (const p of items) {
      const old = list.querySelector(`[data-pid="${CSS.escape(p.id)}"]`);
      // A card whose details are open stays open when it is redrawn.
      const open = old?.querySelector('details')?.open;
      const el = card(p);
      if (open) el.querySelector('details').open = true;
      if (old) {
        const focused = old.contains(document.activeElement);
        old.replaceWith(el);
        if (focused) (el.querySelector('.claim') || el.querySelector('summary') || list).focus();
      } else {
        place(el);
        added = true;
      }
    }
    if (onChange) onChange(added);
  }
  const timer = setInterval(() => streaming() || refresh(), 5000);
  onLeave(() => clearInterval(timer));
  return { refresh };
}

// The payments card's contents: the send form (while the group is live) and the bill link.
export function paymentsSection(gid, { live, onSent }) {
  const bill = h('p', {}, h('a', { href: '#/bill', id: 'bill-link' }, t('pay.bill_link')));
  if (!live) return [bill];
  const amount = h('input', { name: 'rp-amount', inputmode: 'decimal', required: true, autocomplete: 'off', placeholder: '8.88' });
  const shares = h('input', { name: 'rp-shares', type: 'number', min: 1, max: 1000, step: 1, required: true, value: '5' });
  const memo = h('input', { name: 'rp-memo', maxlength: 200, autocomplete: 'off', placeholder: t('pay.memo_default') });
  const slot = h('div', { id: 'rp-error' });
  const btn = h('button', { type: 'submit', id: 'rp-send', class: 'rp-send' }, t('pay.send'));
  const form = h('form', { id: 'rp-form', 'aria-label': t('pay.send_title'), novalidate: true },
    field(t('pay.amount'), amount, t('pay.amount_hint')),
    field(t('pay.shares'), shares, t('pay.shares_hint')),
    field(t('pay.memo'), memo, t('pay.memo_hint')), btn, slot);
  const say = (key) => slot.replaceChildren(h('p', { class: 'error', role: 'alert', 'data-field': key }, t('pay.err.' + key)));
  form.addEventListener('submit', busy(btn, slot, async () => {
    const fen = parseYuan(amount.value);
    const n = Number(shares.value);
    if (fen === null || fen < 1 || fen > 100000000) return say('amount');
    if (!Number.isInteger(n) || n < 1 || n > 1000) return say('shares');
    if (n > fen) return say('share_min');
    const body = { amount: fen, shares: n };
    if (memo.value.trim()) body.memo = memo.value.trim();
    let p;
    try {
      p = await api.post(`/v1/groups/${enc(gid)}/payments`, body);
    } catch (e) {
      slot.replaceChildren(sendError(e, fen, n));
      return;
    }
    amount.value = '';
    memo.value = '';
    toast(t('pay.sent', { amount: money(p.amount) }));
    if (onSent) await onSent(p);
  }));
  return [h('h3', {}, t('pay.send_title')), form, bill];
}

// #/bill: the person's bill lines, oldest first, with group names and a total.
export async function billView() {
  const lines = [];
  let after = '';
  for (let i = 0; i < 50; i++) { // at most 10,000 lines on one page
    const page = await api.get(`/v1/me/bill?limit=200${after ? '&after=' + enc(after) : ''}`);
    lines.push(...page.items);
    if (!page.next_cursor || !page.items.length) break;
    after = page.next_cursor;
  }
  const kind = (k) => t(`bill.kind.${['red_packet_sent', 'red_packet_received'].includes(k) ? k : 'other'}`);
  const total = lines.reduce((s, l) => s + l.amount, 0);
  const table = lines.length ? h('div', {},
    h('table', { class: 'bill', id: 'bill' },
      h('caption', { id: 'bill-caption' }, t('bill.title')),
      h('thead', {}, h('tr', {}, ['when', 'group', 'what', 'amount'].map((c) =>
        h('th', { scope: 'col', class: c === 'amount' ? 'num' : null }, t('bill.' + c))))),
      h('tbody', {}, lines.map((l) => h('tr', { 'data-kind': l.kind },
        h('td', {}, when(l.created_at)), h('td', {}, l.group_name), h('td', {}, kind(l.kind)),
        h('td', { class: `num ${l.amount < 0 ? 'neg' : 'pos'}` }, money(l.amount, true))))),
      h('tfoot', {}, h('tr', {}, h('th', { scope: 'row', colspan: 3 }, t('bill.total')),
        h('td', { class: 'num', id: 'bill-total' }, money(total, true))))))
    : h('p', { class: 'muted', id: 'bill-empty' }, t('bill.empty'));
  return h('div', { id: 'bill-page' }, h('h1', {}, t('bill.title')), h('p', { class: 'muted' }, t('bill.intro')), table);
}
