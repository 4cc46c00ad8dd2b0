// SPDX-License-Identifier: MIT
// Small DOM helpers.  Text always goes in as text nodes (never innerHTML), so
// nothing a user typed (group names, messages) can become markup.

import { has, t } from './i18n.js';

// h('button', {class: 'x', onclick: fn, disabled: true}, 'text', child, [more])
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

let uid = 0;
// A labelled form field: returns [label, input] wired by id.
export function field(labelText, input, hint) {
  const id = input.id || `f${++uid}`;
  input.id = id;
  const parts = [h('label', { for: id }, labelText), input];
  if (hint) {
    const hid = id + '-hint';
    input.setAttribute('aria-describedby', hid);
    parts.push(h('p', { class: 'hint', id: hid }, hint));
  }
  return h('div', { class: 'field' }, parts);
}

// A toast speaks the language it was raised in: a change of language takes it down
// rather than leave an English sentence on a Chinese page.
export function dismissToast() {
  clearTimeout(toast.timer);
  document.getElementById('toast').classList.remove('show');
}

export function toast(text) {
  const el = document.getElementById('toast');
  el.textContent = text;
  el.classList.add('show');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.classList.remove('show'), 4000);
}

function methodName(m) {
  return has('req.method.' + m) ? t('req.method.' + m) : String(m);
}

// The lines of a 428 answer's `requirements`, in every shape the API documents
// (docs/openapi.yaml, Problem): an array of {method, how} (the platform's missing
// methods, or a step-up password), or an object {all, any_of, review, denied} (a risk
// step-up).  null for anything else, so the caller says so instead of breaking.
export function requirementLines(reqs) {
  // A method the console has no words for is a shape it does not know either.
  const known = (m) => typeof m === 'string' && has('req.method.' + m);
  const named = (a) => Array.isArray(a) && a.every(known);
  if (Array.isArray(reqs)) {
    if (!reqs.every((r) => r && known(r.method))) return null;
    return reqs.map((r) => methodName(r.method)); // `how` is the server's English: never shown
  }
  if (reqs && typeof reqs === 'object' && named(reqs.all) && named(reqs.any_of ?? [])) {
    const lines = [];
    if (reqs.all.length) lines.push(t('req.all', { methods: reqs.all.map(methodName).join(', ') }));
    if (reqs.any_of?.length) lines.push(t('req.any_of', { methods: reqs.any_of.map(methodName).join(', ') }));
    if (reqs.review) lines.push(t('req.review'));
    if (reqs.denied) lines.push(t('req.denied'));
    return lines.length ? lines : null;
  }
  return null;
}

// What a refusal that carries `requirements` still needs, as a list; an unknown shape
// is a translated message, never an exception.
export function requirementsBox(reqs) {
  const lines = requirementLines(reqs);
  if (!lines) return h('p', { class: 'error', role: 'alert', id: 'requirements-unexpected' }, t('req.unexpected'));
  return h('div', { class: 'error', role: 'alert', id: 'requirements-needed' },
    h('p', {}, t('req.title')), h('ul', {}, lines.map((l) => h('li', {}, l))));
}

// An error box inside a view, announced to screen readers.  A code the console has
// words for is said in the user's language and nothing else ("Wrong password."); any
// other as "Something went wrong" with the code, for whoever helps them.  The server's
// English detail never reaches the screen; the code stays in data-code.  A 428 answer
// lists what it still needs.
export function errorBox(err) {
  const text = err.code === 'NETWORK' ? t('error.network')
    : has('error.' + err.code) ? t('error.' + err.code) : t('error.generic', { detail: t('error.code', { code: err.code }) });
  const box = h('p', { class: 'error', role: 'alert', 'data-code': err.code }, text);
  const reqs = err.problem?.requirements;
  return reqs === undefined ? box : h('div', {}, box, requirementsBox(reqs));
}

// A table that becomes one card a row at phone width (style.css, table.stack): each
// cell is labelled with its column's heading.
export function stackTable(table) {
  const heads = [...table.querySelectorAll('thead th')].map((th) => th.textContent);
  for (const tr of table.querySelectorAll('tbody tr')) [...tr.children].forEach((td, i) => { td.dataset.label = heads[i] ?? ''; });
  table.classList.add('stack');
  return table;
}

export function badge(state) {
  return h('span', { class: `badge state-${state}`, 'data-state': state }, t('state.' + state));
}

// Disable a button while an async action runs; show the error next to it on failure.
export function busy(button, slot, fn) {
  return async (ev) => {
    ev?.preventDefault?.();
    button.disabled = true;
    slot.replaceChildren();
    try {
      await fn();
    } catch (e) {
      slot.replaceChildren(errorBox(e));
    } finally {
      if (button.isConnected) button.disabled = false;
    }
  };
}
