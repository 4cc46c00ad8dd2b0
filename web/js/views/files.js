// SPDX-License-Identifier: MIT
// A group's files in the console: the list (name, size, who uploaded it and when), a
// download for each, a small preview of images, the upload form, and the attachment a
// file message shows in the history.  Bytes are fetched with the bearer token in a
// header (never in a URL) and handed to the page as blob: URLs, which the page revokes
// when it is left.

import { api, enc } from '../api.js';
import { addWords, t, when } from '../i18n.js';
import { busy, h, toast } from '../ui.js';

addWords({
  en: {
    'files.none': 'No files yet. Uploads appear here and in the messages.',
    'files.upload_label': 'Choose a file to share',
    'files.choose': 'Choose a file',
    'files.none_chosen': 'No file chosen',
    'files.upload': 'Upload',
    'files.uploaded': '{name} uploaded.',
    'files.by': '{name} · {when}',
    'files.someone': 'a former member',
    'files.download': 'Download',
    'files.download_label': 'Download {name} ({size})',
    'files.preview': 'Preview of {name}',
    'files.preview_failed': 'no preview',
    'size.B': '{n} B',
    'size.KB': '{n} KB',
    'size.MB': '{n} MB',
    'size.GB': '{n} GB',
    'error.FILE_NOT_FOUND': 'That file is no longer in this group.',
    'error.BODY_TOO_LARGE': 'That file is larger than this server accepts.',
    'error.STORAGE_FULL': 'The server has no room for this file right now. Try again later.',
  },
  zh: {
    'files.none': '还没有文件。上传的文件会显示在这里和消息中。',
    'files.upload_label': '选择要分享的文件',
    'files.choose': '选择文件',
    'files.none_chosen': '未选择文件',
    'files.upload': '上传',
    'files.uploaded': '已上传 {name}。',
    'files.by': '{name} · {when}',
    'files.someone': '已离开的成员',
    'files.download': '下载',
    'files.download_label': '下载 {name}（{size}）',
    'files.preview': '{name} 的预览',
    'files.preview_failed': '无法预览',
    'size.B': '{n} 字节',
    'size.KB': '{n} KB',
    'size.MB': '{n} MB',
    'size.GB': '{n} GB',
    'error.FILE_NOT_FOUND': '该文件已不在本群中。',
    'error.BODY_TOO_LARGE': '文件超过了服务器允许的大小。',
    'error.STORAGE_FULL': '服务器暂时没有空间存放该文件，请稍后再试。',
  },
});

// "512 B", "1.5 KB", "20 MB": sizes as people read them (1 KB = 1024 bytes).
export function humanSize(bytes) {
  const units = ['B', 'KB', 'MB', 'GB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const n = u === 0 ? String(v) : v < 10 ? v.toFixed(1) : String(Math.round(v));
  return t('size.' + units[u], { n });
}

// Images up to this size get a preview; larger ones (and other types) only a download.
const PREVIEW_MAX = 8 * 1024 * 1024;
const PREVIEW_TYPES = /^image\/(png|jpeg|gif|webp|avif|bmp)$/;
export const previewable = (f) => PREVIEW_TYPES.test(f.content_type || '') && f.size <= PREVIEW_MAX;

// The blob: URLs of this page, one fetch per file however often it is shown.
const blobs = new Map(); // "gid/digest" -> Promise<string>

function blobUrl(gid, digest) {
  const key = `${gid}/${digest}`;
  if (!blobs.has(key)) {
    const p = api.get(`/v1/groups/${enc(gid)}/files/${enc(digest)}`, { blob: true }).then((b) => URL.createObjectURL(b));
    p.catch(() => blobs.delete(key)); // a failure is retried on the next click
    blobs.set(key, p);
  }
  return blobs.get(key);
}

// Revoke every blob: URL of the page (called when the group view is left).
export function releaseFiles() {
  for (const p of blobs.values()) p.then((u) => URL.revokeObjectURL(u), () => {});
  blobs.clear();
}

// A download button for file f ({digest|sha256, name, size}); errors show in slot.
function downloadButton(gid, f, digest) {
  const slot = h('span', { class: 'file-error' });
  const btn = h('button', {
    type: 'button', class: 'link download', 'data-digest': digest,
    'aria-label': t('files.download_label', { name: f.name, size: humanSize(f.size) }),
  }, t('files.download'));
  btn.addEventListener('click', busy(btn, slot, async () => {
    const url = await blobUrl(gid, digest);
    const a = h('a', { href: url, download: f.name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
  }));
  return [btn, slot];
}

// A thumbnail of image f, filled in once its bytes arrive.
function thumbnail(gid, f, digest) {
  const img = h('img', { class: 'thumb', alt: t('files.preview', { name: f.name }), 'data-digest': digest });
  const box = h('span', { class: 'thumb-box' }, img);
  blobUrl(gid, digest).then((u) => {
    img.src = u;
  }, () => box.replaceChildren(h('span', { class: 'muted small' }, t('files.preview_failed'))));
  return box;
}

// The attachment of a file message in the history (m.file: {sha256, name, content_type, size}).
export function fileAttachment(gid, file) {
  return h('span', { class: 'attachment', 'data-digest': file.sha256 },
    previewable(file) ? thumbnail(gid, file, file.sha256) : null,
    h('span', { class: 'file-name' }, file.name), ' ',
    h('span', { class: 'muted' }, humanSize(file.size)), ' ',
    downloadButton(gid, file, file.sha256));
}

function fileRow(gid, f, names) {
  const who = f.uploader_display_name || names.get(f.uploader) || t('files.someone');
  return h('li', { class: 'file', 'data-digest': f.digest },
    previewable(f) ? thumbnail(gid, f, f.digest) : null,
    h('span', { class: 'file-main' },
      h('span', { class: 'file-name' }, f.name), ' ',
      h('span', { class: 'muted' }, humanSize(f.size)),
      h('span', { class: 'muted small file-by' }, t('files.by', { name: who, when: when(f.created_at) }))),
    downloadButton(gid, f, f.digest));
}

// The files card's contents: the list and, while the group is live, the upload form.
// names maps openids to the names shown; onUploaded(file) runs after an upload (the
// group view shows its message at once).
export function filesSection(gid, items, { live, names, onUploaded }) {
  const empty = h('p', { class: 'muted', hidden: items.length > 0 }, t('files.none'));
  const ul = h('ul', { class: 'list files', id: 'files' }, items.map((f) => fileRow(gid, f, names)));
  let form = null;
  if (live) {
    // The browser's own file button speaks the browser's language, not the page's: the
    // input is hidden (still focusable) behind a button-like label in the page's words,
    // with the chosen file's name beside it.
    const input = h('input', { type: 'file', name: 'upload', required: true, id: 'upload-input', class: 'file-input' });
    const chosen = h('span', { class: 'muted', id: 'upload-chosen', 'aria-live': 'polite' }, t('files.none_chosen'));
    input.addEventListener('change', () => {
      chosen.textContent = input.files[0] ? input.files[0].name : t('files.none_chosen');
    });
    const picker = h('div', { class: 'field' },
      h('span', { class: 'label', id: 'upload-title' }, t('files.upload_label')),
      h('span', { class: 'file-pick' }, input,
        h('label', { for: 'upload-input', class: 'button', id: 'upload-choose' }, t('files.choose')), chosen));
    input.setAttribute('aria-labelledby', 'upload-title upload-choose');
    const slot = h('div');
    const btn = h('button', { type: 'submit', id: 'upload-btn' }, t('files.upload'));
    form = h('form', { class: 'row', id: 'upload-form' }, picker, btn, slot);
    form.addEventListener('submit', busy(btn, slot, async () => {
      const file = input.files[0];
      if (!file) return;
      const f = await api.post(`/v1/groups/${enc(gid)}/files?name=${enc(file.name)}`, file,
        { raw: true, contentType: file.type || 'application/octet-stream' });
      if (!ul.querySelector(`[data-digest="${f.digest}"]`)) ul.append(fileRow(gid, f, names));
      empty.hidden = true;
      input.value = '';
      chosen.textContent = t('files.none_chosen');
      toast(t('files.uploaded', { name: f.name }));
      if (onUploaded) await onUploaded(f);
    }));
  }
  return [empty, ul, form];
}
