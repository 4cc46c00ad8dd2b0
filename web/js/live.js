// SPDX-License-Identifier: MIT
// New messages of a group, as they arrive.  Today this polls
// GET /v1/groups/{id}/messages?after=<seq> every 2 s; when GET /v1/events (server-sent
// events) lands, only followMessages changes: open an EventSource, filter the
// group's message events, call onMessages with them, and return its close().
// Every caller already treats it as a stream that starts after `afterSeq`.

import { api, enc } from './api.js';

export const POLL_MS = 2000;

// Calls onMessages(items) with each batch of messages newer than afterSeq, in seq
// order, and onError(err) when a fetch fails (it keeps trying, unless the group is
// gone).  Returns stop().
export function followMessages(gid, afterSeq, onMessages, onError = () => {}) {
  let after = afterSeq;
  let stopped = false;
  let timer = null;
  async function tick() {
    if (stopped) return;
    try {
      for (;;) {
        const page = await api.get(`/v1/groups/${enc(gid)}/messages?after=${after}&limit=200`);
        if (stopped) return;
        if (page.items.length) {
          after = page.items[page.items.length - 1].seq;
          onMessages(page.items);
        }
        if (!page.next_cursor || !page.items.length) break;
      }
    } catch (e) {
      if (!stopped) onError(e);
      if (e.code === 'GROUP_GONE') stopped = true; // dissolved: nothing more will come
    }
    if (!stopped) timer = setTimeout(tick, POLL_MS);
  }
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
