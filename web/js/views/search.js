// SPDX-License-Identifier: MIT
// Search within a group's messages (GET /v1/groups/{id}/messages/search): a search box
// in the group page and its results, newest first, with the author's name and the time;
// "More results" follows next_cursor. A query of one or two characters is answered by
// the server a bounded window at a time, so a page can be short (even empty) while
// there is more: the card keeps asking until it has a few results or reaches the end.
import { api, enc } from '../api.js';
import { t, when } from '../i18n.js';
import { busy, field, h } from '../ui.js';

const PAGE = 20;
const MAX_CALLS = 25; // windows walked for one click (a short query on a very long history)

// The card; names maps an openid to the name the group page shows for it.
export function searchCard(gid, names) {
  const base = `/v1/groups/${enc(gid)}/messages/search`;
  const input = h('input', {
    type: 'search', name: 'search', id: 'search-q', maxlength: 200, autocomplete: 'off', required: true,
  });
  const slot = h('div');
  const go = h('button', { type: 'submit', id: 'search-go' }, t('search.go'));
  const form = h('form', { class: 'row', role: 'search', 'aria-label': t('search.title') },
    field(t('search.label'), input), go, slot);
  const status = h('p', { class: 'muted', id: 'search-status', role: 'status' });
  const list = h('ol', { class: 'messages search-results', id: 'search-results', 'aria-labelledby': 'h-search' });
  const moreSlot = h('div');
  const more = h('button', { type: 'button', id: 'search-more' }, t('search.more'));
  const moreRow = h('div', { hidden: true }, more, moreSlot); // buttons' CSS display outranks [hidden]
  let query = '';
  let cursor = null;
  let shown = 0;

  function item(m) {
    return h('li', { class: 'msg', 'data-seq': m.seq, 'data-author': m.author },
      h('span', { class: 'who' }, m.author_display_name || names.get(m.author) || m.author_username || t('notice.someone')),
      h('span', { class: 'text' }, m.text),
      h('time', { class: 'muted', datetime: new Date(m.created_at * 1000).toISOString() }, when(m.created_at)));
  }

  // Pages from the cursor until PAGE results or the end (or MAX_CALLS windows).  When
  // the last page's scan stopped at its window (incomplete: SEARCH_SCAN_LIMIT), the
  // status says how far back it read: a short list is then not "all there is".
  async function fetchMore() {
    let got = 0;
    let stopped = null;
    for (let calls = 0; calls < MAX_CALLS; calls++) {
      const after = cursor ? `&after=${enc(cursor)}` : '';
      const page = await api.get(`${base}?q=${enc(query)}&limit=${PAGE - got}${after}`);
      list.append(...page.items.map(item));
      got += page.items.length;
      cursor = page.next_cursor || null;
      stopped = page.incomplete ? page : null;
      if (!cursor || got >= PAGE) break;
    }
    shown += got;
    const said = shown ? t('search.count', { n: shown }) : t('search.none', { q: query });
    status.textContent = stopped
      ? `${said} ${t('search.incomplete.' + stopped.incomplete, { seq: stopped.scanned_to })}` : said;
    status.dataset.incomplete = stopped ? stopped.incomplete : '';
    moreRow.hidden = !cursor;
  }

  form.addEventListener('submit', busy(go, slot, async () => {
    query = input.value.trim();
    cursor = null;
    shown = 0;
    list.replaceChildren();
    status.textContent = '';
    moreRow.hidden = true;
    if (!query) return;
    await fetchMore();
  }));
  more.addEventListener('click', busy(more, moreSlot, fetchMore));

  return h('section', { 'aria-labelledby': 'h-search', class: 'card wide', id: 'search' },
    h('h2', { id: 'h-search' }, t('search.title')), form, status, list, moreRow);
}
