// SPDX-License-Identifier: MIT
// The HTTP API client: bearer token, JSON in and out, problem+json errors as ApiError.
// The token lives in sessionStorage: it ends with the tab, and is never in a cookie,
// so no other site can make the browser use it.

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || 'HTTP_' + status;
    this.problem = problem;
  }
}

export const session = {
  get token() { return sessionStorage.getItem('qun.token'); },
  get openid() { return sessionStorage.getItem('qun.openid'); },
  get username() { return sessionStorage.getItem('qun.username'); },
  // Signed in with a server admin's one-time code: the session may only set a new password.
  get mustChange() { return sessionStorage.getItem('qun.mustchange') === '1'; },
  set mustChange(on) {
    if (on) sessionStorage.setItem('qun.mustchange', '1');
    else sessionStorage.removeItem('qun.mustchange');
  },
  set(token, openid, username) {
    sessionStorage.removeItem('qun.admin'); // learnt again for this account (views/after.js)
    sessionStorage.setItem('qun.token', token);
    sessionStorage.setItem('qun.openid', openid);
    sessionStorage.setItem('qun.username', username);
  },
  clear() {
    for (const k of ['qun.token', 'qun.openid', 'qun.username', 'qun.mustchange', 'qun.admin']) sessionStorage.removeItem(k);
    oneTimeCode = null;
  },
};

// A device is recognized by the secret the server gave it at its first login, never
// by its id (anyone who can list an account's devices knows the ids).  So each account
// signed in from this browser keeps {id, secret} in localStorage, and sends both back.
function newDeviceId() {
  const b = crypto.getRandomValues(new Uint8Array(9));
  return 'web-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// Usernames are compared without case (they are ASCII), so one account has one key.
const deviceKey = (username) => 'qun.device.' + username.toLowerCase();

function deviceFor(username) {
  try {
    const d = JSON.parse(localStorage.getItem(deviceKey(username)) || 'null');
    if (d && typeof d.id === 'string' && typeof d.secret === 'string') return d;
  } catch { /* a damaged entry: this browser signs in as a new device */ }
  return { id: newDeviceId() };
}

// The one-time code a session was opened with, kept in memory only (never in storage)
// so the new-password form need not ask for it again.
let oneTimeCode = null;
export const takeOneTimeCode = () => oneTimeCode;

// A 503 with a short Retry-After is a server briefly full: too many password checks or
// uploads waiting, a restart under way, a write that could not commit.  qund answers it
// before doing any of the request's work, so the same request is sent again after the
// pause, up to BUSY_RETRIES times, before the person is told the server is busy.  The
// milliseconds to wait, or null to take the answer as it is.
const BUSY_RETRIES = 3;
function busyWait(res, attempt) {
  if (res.status !== 503 || attempt >= BUSY_RETRIES) return null;
  const secs = Number(res.headers.get('Retry-After'));
  return Number.isInteger(secs) && secs >= 0 && secs <= 5 ? Math.max(secs * 1000, 250) : null;
}

export async function request(method, path, body, opts = {}) {
  const headers = {};
  if (session.token) headers.Authorization = 'Bearer ' + session.token;
  let payload;
  if (opts.raw) {
    payload = body;
    headers['Content-Type'] = opts.contentType || 'application/octet-stream';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers['Content-Type'] = 'application/json';
  }
  let res;
  for (let attempt = 0; ; attempt++) {
    try {
      res = await fetch(path, { method, headers, body: payload, cache: 'no-store' });
    } catch (e) {
      throw new ApiError(0, { code: 'NETWORK', detail: e.message });
    }
    const wait = busyWait(res, attempt);
    if (wait === null) break;
    await new Promise((r) => setTimeout(r, wait));
  }
  if (res.status === 204) return null;
  const type = res.headers.get('Content-Type') || '';
  if (!res.ok) {
    const problem = type.includes('json') ? await res.json() : { detail: await res.text() };
    const err = new ApiError(res.status, problem);
    if (err.code === 'PASSWORD_CHANGE_REQUIRED') {
      session.mustChange = true;
      window.dispatchEvent(new CustomEvent('qun:must-change'));
    }
    // A wrong password typed again (a password change, a step-up) is not an ended session.
    if (res.status === 401 && session.token && path !== '/v1/sessions' && err.code !== 'BAD_CREDENTIALS') {
      session.clear();
      window.dispatchEvent(new CustomEvent('qun:signed-out'));
    }
    throw err;
  }
  if (opts.blob) return res.blob(); // a file's bytes (views/files.js)
  return opts.text || !type.includes('json') ? res.text() : res.json();
}

export const api = {
  get: (p, o) => request('GET', p, undefined, o),
  post: (p, b, o) => request('POST', p, b ?? {}, o),
  patch: (p, b) => request('PATCH', p, b),
  put: (p, b) => request('PUT', p, b),
  del: (p) => request('DELETE', p),
};

export async function signIn(username, password) {
  let dev = deviceFor(username);
  const login = (d) => api.post('/v1/sessions', { username, password, device_id: d.id, platform: 'web',
    ...(d.secret ? { device_secret: d.secret } : {}) });
  let s;
  try {
    s = await login(dev);
  } catch (e) {
    if (e.code !== 'DEVICE_SECRET_REQUIRED' && e.code !== 'DEVICE_SECRET_INVALID') throw e;
    // This browser cannot prove the device it used to be (its secret was lost or the
    // device predates secrets): it signs in as what it honestly is, a new device.
    dev = { id: newDeviceId() };
    s = await login(dev);
  }
  if (s.device_secret) localStorage.setItem(deviceKey(username), JSON.stringify({ id: dev.id, secret: s.device_secret }));
  session.set(s.token, s.openid, username);
  session.mustChange = s.password_change_required === true;
  oneTimeCode = session.mustChange ? password : null;
  return s;
}

export async function register(username, password) {
  await api.post('/v1/users', { username, password });
  return signIn(username, password);
}

export const enc = encodeURIComponent;
