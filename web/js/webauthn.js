// SPDX-License-Identifier: MIT
// Passkeys in the browser (WebAuthn): the server sends the options of
// navigator.credentials.create / .get as JSON with byte members in base64url
// (docs/verification.md, "Passkeys"); these helpers turn them into the ArrayBuffers the
// browser wants and the browser's answer back into the PublicKeyCredential JSON the
// server checks.  Nothing here decides anything: the server verifies every byte.

import { api, enc } from './api.js';

export const supported = () => typeof window.PublicKeyCredential === 'function' && !!navigator.credentials;

function fromB64u(s) {
  const b = atob(String(s).replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));
  return Uint8Array.from(b, (c) => c.charCodeAt(0)).buffer;
}

function toB64u(buf) {
  const bytes = new Uint8Array(buf);
  let s = '';
  for (const x of bytes) s += String.fromCharCode(x);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const withIds = (list) => (list || []).map((c) => ({ ...c, id: fromB64u(c.id) }));

// Register a passkey for this device (user verification required by the options) and
// store it under label.  Resolves with the stored passkey.
export async function registerPasskey(label) {
  const o = (await api.post('/v1/me/passkeys/options', {})).publicKey;
  const cred = await navigator.credentials.create({ publicKey: {
    ...o,
    challenge: fromB64u(o.challenge),
    user: { ...o.user, id: fromB64u(o.user.id) },
    excludeCredentials: withIds(o.excludeCredentials),
  } });
  const body = {
    id: cred.id, rawId: toB64u(cred.rawId), type: cred.type,
    response: {
      clientDataJSON: toB64u(cred.response.clientDataJSON),
      attestationObject: toB64u(cred.response.attestationObject),
    },
  };
  if (label) body.label = label;
  return api.post('/v1/me/passkeys', body);
}

// Approve challenge cid with a passkey of this account (the browser asks for the
// fingerprint, face or PIN).  Resolves with the challenge's new status.
export async function approveWithPasskey(cid) {
  const o = (await api.post(`/v1/challenges/${enc(cid)}/passkey/options`, {})).publicKey;
  const cred = await navigator.credentials.get({ publicKey: {
    ...o, challenge: fromB64u(o.challenge), allowCredentials: withIds(o.allowCredentials),
  } });
  return api.post(`/v1/challenges/${enc(cid)}/passkey`, {
    id: cred.id, rawId: toB64u(cred.rawId), type: cred.type,
    response: {
      clientDataJSON: toB64u(cred.response.clientDataJSON),
      authenticatorData: toB64u(cred.response.authenticatorData),
      signature: toB64u(cred.response.signature),
    },
  });
}

// A browser refusal (the person cancelled, no passkey on this device, timeout) as a
// code the console has words for.
export function passkeyError(e) {
  if (e && e.code) return e; // an ApiError already
  return { code: e?.name === 'NotAllowedError' ? 'PASSKEY_CANCELLED' : 'PASSKEY_UNAVAILABLE', problem: {} };
}
