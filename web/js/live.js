// SPDX-License-Identifier: MIT
// Live updates of a group through GET /v1/events (server-sent events).
//
// A browser's EventSource cannot send the Authorization header, and the bearer token
// must not go into a URL (it would land in logs and histories).  So each connection
// first asks POST /v1/events/ticket for a short-lived, single-use ticket and opens
// `/v1/events?ticket=…` with it (docs/events.md).  Because the ticket is spent,
// EventSource's own reconnect (same URL) would fail: on any error the source is closed
// at once and reopened here with a fresh ticket and `last_event_id`, so the server
// replays what was missed.  Between the page's first load and the stream's opening a
// message could slip by; right after each (re)open, one GET …/messages?after= catches
// up, and messages are de-duplicated by seq.  Without EventSource, or when tickets
// fail, it falls back to polling.  When the session ends the server sends
// `session.ended` and closes the stream; the next ticket request then signs out.

import { api, enc } from './api.js';

export const POLL_MS = 2000;
const RETRY_MS = 3000;

// Events of a group that change its state (docs/events.md).
const GROUP_EVENTS = ['dissolution.requested', 'dissolution.pending', 'dissolution.approved',
  'dissolution.cancelled', 'dissolution.rejected', 'dissolution.expired', 'group.dissolved',
  'group.restored', 'group.purged', 'member.display_name_changed', 'member.typing', 'message.recalled',
  'payment.created', 'payment.claimed'];

// Follows group gid from message seq afterSeq:
//   onMessages(items)    each batch of newer messages, in seq order, each once;
//   onGroup(type, data)  each state event of the group (dissolution.*, group.*) and each
//                        member.display_name_changed, member.typing, message.recalled
//                        and payment.* (red packets sent and claimed);
//   onError(err)         a failed fetch (it keeps trying, unless the group is gone).
// Returns stop().  follow.mode() says 'events' or 'polling' (for tests and the UI).
export function followGroup(gid, afterSeq, { onMessages, onGroup = () => {}, onError = () => {} }) {
  let after = afterSeq;
  let stopped = false;
  let source = null;
  let timer = null;
  let lastEventId = null;
  let mode = 'connecting';

  function deliver(items) {
    const fresh = items.filter((m) => m.seq > after).sort((a, b) => a.seq - b.seq);
    if (!fresh.length) return;
    after = fresh[fresh.length - 1].seq;
    onMessages(fresh);
  }

  async function catchUp() {
    for (;;) {
      const page = await api.get(`/v1/groups/${enc(gid)}/messages?after=${after}&limit=200`);
      if (stopped) return;
      deliver(page.items);
      if (!page.next_cursor || !page.items.length) return;
    }
  }

  async function poll() {
    if (stopped) return;
    try {
      await catchUp();
    } catch (e) {
      if (!stopped) onError(e);
      if (e.code === 'GROUP_GONE') stopped = true; // dissolved: nothing more will come
    }
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  }

  function onFrame(ev) {
    if (ev.lastEventId) lastEventId = ev.lastEventId;
    let data;
    try {
      data = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (ev.type === 'stream.resync') {
      catchUp().catch(onError);
      return;
    }
    if (data.group !== gid) return;
    if (ev.type === 'message.created') deliver([data]);
    else onGroup(ev.type, data);
    if (ev.type === 'group.dissolved' || ev.type === 'group.purged') {
      // Nothing more will come for this group; the page shows it as gone.
      stop();
    }
  }

  async function connect() {
    if (stopped) return;
    let ticket;
    try {
      ticket = (await api.post('/v1/events/ticket', {})).ticket;
    } catch (e) {
      if (stopped) return;
      if (e.status === 0 || e.status >= 500) { // the server is away: try again later
        timer = setTimeout(connect, RETRY_MS);
        return;
      }
      mode = 'polling'; // tickets are refused: poll instead
      poll();
      return;
    }
    if (stopped) return;
    const resume = lastEventId ? `&last_event_id=${enc(lastEventId)}` : '';
    source = new EventSource(`/v1/events?ticket=${enc(ticket)}${resume}`);
    source.addEventListener('open', () => {
      mode = 'events';
      catchUp().catch((e) => {
        onError(e);
        if (e.code === 'GROUP_GONE') stop();
      });
    });
    for (const type of ['message.created', 'stream.resync', ...GROUP_EVENTS]) source.addEventListener(type, onFrame);
    source.addEventListener('session.ended', () => {
      // This session was signed out, revoked by a password change or expired, and the
      // server ends the stream.  Asking for a ticket at once gets the 401 that signs the
      // console out (api.js), rather than a retry in RETRY_MS that can only fail.
      source.close();
      source = null;
      connect();
    });
    source.addEventListener('error', () => {
      // The stream ended (server restart, network) or never opened: the ticket is
      // spent either way, so close before EventSource retries with it.
      source.close();
      source = null;
      if (!stopped) timer = setTimeout(connect, RETRY_MS);
    });
  }

  function stop() {
    stopped = true;
    clearTimeout(timer);
    if (source) source.close();
    source = null;
  }

  if (typeof EventSource === 'function') connect();
  else {
    mode = 'polling';
    poll();
  }
  stop.mode = () => mode;
  return stop;
}

// Follows every group of the caller for the group list: onEvent(type, data) for each
// of types (e.g. message.created, receipt.read) of any group.  A plain stream without
// resume: onOpen runs each time it (re)opens, so the list can reload what it may have
// missed.  Without EventSource it does nothing (the list is static then).
// Returns stop().
export function followAll(types, { onEvent, onOpen = () => {} }) {
  let stopped = false;
  let source = null;
  let timer = null;

  async function connect() {
    if (stopped) return;
    let ticket;
    try {
      ticket = (await api.post('/v1/events/ticket', {})).ticket;
    } catch (e) {
      if (!stopped && (e.status === 0 || e.status >= 500)) timer = setTimeout(connect, RETRY_MS);
      return;
    }
    if (stopped) return;
    source = new EventSource(`/v1/events?ticket=${enc(ticket)}`);
    source.addEventListener('open', () => onOpen());
    const onFrame = (ev) => {
      try {
        onEvent(ev.type, JSON.parse(ev.data));
      } catch {
        // a frame that is not JSON says nothing to the list
      }
    };
    for (const type of types) source.addEventListener(type, onFrame);
    source.addEventListener('error', () => {
      source.close();
      source = null;
      if (!stopped) timer = setTimeout(connect, RETRY_MS);
    });
  }

  function stop() {
    stopped = true;
    clearTimeout(timer);
    if (source) source.close();
    source = null;
  }

  if (typeof EventSource === 'function') connect();
  return stop;
}

// Waits for the outcome of challenge cid on the event stream (`challenge.approved`,
// `challenge.declined`, docs/events.md): onOutcome(state) once, with 'approved' or
// 'declined' (or 'expired'/'used' when a catch-up read finds it so).  Each time the
// stream (re)opens, one GET /v1/challenges/{id} catches up with an outcome that came
// while it was closed: that is a catch-up, not polling.  Returns stop().
export function followChallenge(cid, onOutcome) {
  let done = false;
  const finish = (state) => {
    if (done || state === 'pending') return;
    done = true;
    stop();
    onOutcome(state);
  };
  const stop = followAll(['challenge.approved', 'challenge.declined'], {
    onEvent: (_type, data) => {
      if (data.id === cid) finish(data.state);
    },
    onOpen: () => {
      api.get(`/v1/challenges/${enc(cid)}`).then((c) => finish(c.state)).catch(() => {});
    },
  });
  return () => {
    done = true;
    stop();
  };
}
