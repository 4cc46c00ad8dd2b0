// SPDX-License-Identifier: MIT
// Small DOM helpers.  Text always goes in as text nodes (never innerHTML), so
// nothing a user typed (group names, messages) can become markup.

import { t } from './i18n.js';

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

export function toast(text) {
  const el = document.getElementById('toast');
  el.textContent = text;
  el.classList.add('show');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.classList.remove('show'), 4000);
}

// An error box inside a view, announced to screen readers.
export function errorBox(err) {
  const detail = err.code === 'NETWORK' ? t('error.network') : `${err.message} (${err.code})`;
  return h('p', { class: 'error', role: 'alert' }, t('error.generic', { detail }));
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
