// SPDX-License-Identifier: MIT
// Ledger verification in the browser, with WebCrypto only (docs/ledger.md):
//   - the C2SP signed-note checkpoint and its Ed25519 signature, against the verifier
//     key `<name>+<hex key id>+<base64(0x01 || public key)>`;
//   - RFC 6962 hashing: leaf = SHA-256(0x00 || entry), node = SHA-256(0x01 || l || r);
//   - RFC 9162 section 2.1.3.2 inclusion proof verification.
// Nothing here trusts a hash the server computed: leaves are hashed from the entry
// text, and roots are only accepted from a checkpoint whose signature verifies.

const te = new TextEncoder();

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function hexToBytes(hex) {
  if (!/^([0-9a-f]{2})*$/i.test(hex)) throw new Error('not hex');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

export function bytesToHex(b) {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function b64ToBytes(s) {
  const bin = atob(s);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

export const leafHash = (entryText) => sha256(concat(Uint8Array.of(0), te.encode(entryText)));
export const nodeHash = (l, r) => sha256(concat(Uint8Array.of(1), l, r));

// RFC 9162 2.1.3.2: true when proof leads from leaf at index in a tree of size to root.
export async function verifyInclusion(leaf, index, size, proof, root) {
  if (!(index >= 0 && index < size)) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(r, root);
}

// Parse `<name>+<8 hex>+<base64(0x01 || 32-byte key)>` and check its key id.
export async function parseVerifierKey(text) {
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(text);
  if (!m) throw new Error('malformed verifier key');
  const raw = b64ToBytes(m[3]);
  if (raw.length !== 33 || raw[0] !== 1) throw new Error('not an Ed25519 verifier key');
  const pub = raw.slice(1);
  const id = (await sha256(concat(te.encode(m[1]), Uint8Array.of(0x0a, 0x01), pub))).slice(0, 4);
  if (bytesToHex(id) !== m[2]) throw new Error('the key id does not match the key');
  return { name: m[1], id, pub };
}

// Verify a signed-note checkpoint.  Returns {origin, size, root}; throws when the
// format is wrong or no signature by key verifies.
export async function openCheckpoint(text, key) {
  const split = text.indexOf('\n\n');
  if (split < 0) throw new Error('no signature block');
  const body = text.slice(0, split + 1);
  const lines = body.split('\n');
  if (lines.length < 4) throw new Error('the checkpoint body is too short');
  const [origin, sizeText, rootText] = lines;
  if (origin !== key.name) throw new Error(`origin ${origin} is not the key's name ${key.name}`);
  if (!/^\d+$/.test(sizeText)) throw new Error('bad tree size');
  const root = b64ToBytes(rootText);
  if (root.length !== 32) throw new Error('bad root hash');
  const pub = await crypto.subtle.importKey('raw', key.pub, { name: 'Ed25519' }, false, ['verify']);
  let ok = false;
  for (const line of text.slice(split + 2).split('\n')) {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m || m[1] !== key.name) continue;
    const sig = b64ToBytes(m[2]);
    if (sig.length !== 68 || !equal(sig.slice(0, 4), key.id)) continue;
    if (await crypto.subtle.verify({ name: 'Ed25519' }, pub, sig.slice(4), te.encode(body))) ok = true;
  }
  if (!ok) throw new Error('no valid signature by the ledger key');
  return { origin, size: Number(sizeText), root };
}
