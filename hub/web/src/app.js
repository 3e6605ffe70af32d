/*
 * callbox browser caller app (hub/web/src/app.js), served by callbox-hub at `/`.
 *
 * Owns, in this one file (vanilla JS + livekit-client, no framework):
 *  - sign-in: the credential the hub printed (kept in localStorage until sign-out) or a
 *    one-time link `/#signin=<code>` (POST /api/signin, then the code leaves the URL);
 *  - the hub WebSocket `/ws` (events, reconnect with backoff, the offline banner);
 *  - contacts with presence (polled every 5 s) and the call history (call back);
 *  - the call state machine: idle → outgoing | incoming → connecting → in-call → ended;
 *  - LiveKit media: join, publish (VP8 640x480, or microphone only), remote video/audio,
 *    mute, camera, switch camera, speaker, quality, reconnecting;
 *  - the ring tones (WebAudio, no audio file) and background notifications;
 *  - `window.callboxDebug`, read by the end-to-end test.
 * The markup shell is index.html, the looks app.css; build.mjs bundles this into dist/.
 * Test hooks (data-testid, data-state, …) are a contract with the Playwright test: keep them.
 */
import {
  ConnectionQuality,
  Room,
  RoomEvent,
  Track,
  supportsAudioOutputSelection,
} from 'livekit-client';

const KEY_CRED = 'callbox.credential';
const KEY_ME = 'callbox.me';
const CONTACTS_POLL_MS = 5000;
const WS_BACKOFF_MIN_MS = 1000;
const WS_BACKOFF_MAX_MS = 30000;
const WS_STABLE_MS = 10000;
const ENDED_TO_IDLE_MS = 3000;

const PRESENCE_WORDS = { online: 'Online', busy: 'Busy', offline: 'Offline' };
const QUALITY_WORDS = {
  [ConnectionQuality.Excellent]: 'excellent',
  [ConnectionQuality.Good]: 'good',
  [ConnectionQuality.Poor]: 'poor',
  [ConnectionQuality.Lost]: 'lost',
};
const REASON_WORDS = { busy: 'busy', declined: 'declined', dnd: 'do not disturb', no_answer: 'no answer' };

// ---------------------------------------------------------------------------------------
// Small helpers

/** Creates an element: attrs `class`, `testid` (data-testid), `onX` listeners, others as is. */
function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'testid') el.dataset.testid = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat()) {
    if (kid != null && kid !== false) el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

const ICONS = {
  video: '<rect x="2.5" y="6" width="13" height="12" rx="2.5"/><path d="M15.5 10.5l6-3.5v10l-6-3.5z"/>',
  videoOff: '<path d="M15.5 13.5l6 3.5V7l-6 3.5M10 6h3a2.5 2.5 0 0 1 2.5 2.5V11M15.5 16v-.5A2.5 2.5 0 0 1 13 18H5a2.5 2.5 0 0 1-2.5-2.5v-7A2.5 2.5 0 0 1 5 6M3 3l18 18"/>',
  phone: '<path d="M5 3.5h3.5l2 5-2.5 1.5a11 11 0 0 0 6 6l1.5-2.5 5 2V19a2 2 0 0 1-2 2A17 17 0 0 1 3 5.5a2 2 0 0 1 2-2z"/>',
  hangup: '<path d="M3 14.5l2.5 2.5 3.5-2v-3a10 10 0 0 1 6 0v3l3.5 2 2.5-2.5c-4.5-5-13.5-5-18 0z"/>',
  mic: '<rect x="9" y="2.5" width="6" height="12" rx="3"/><path d="M5 11a7 7 0 0 0 14 0M12 18v3.5"/>',
  micOff: '<path d="M15 10V5.5a3 3 0 0 0-5.7-1.3M9 9v2.5a3 3 0 0 0 5 2.2M5 11a7 7 0 0 0 11.5 5.4M19 11a7 7 0 0 1-.6 2.8M12 18v3.5M3 3l18 18"/>',
  flip: '<path d="M4 12a8 8 0 0 1 14-5.3M20 12a8 8 0 0 1-14 5.3M18.5 3v4h-4M5.5 21v-4h4"/>',
  outgoing: '<path d="M7 17L17 7M9 7h8v8"/>',
  incoming: '<path d="M17 7L7 17M15 17H7V9"/>',
  bell: '<path d="M6 16.5V11a6 6 0 0 1 12 0v5.5l2 1.5H4zM10 20.5a2 2 0 0 0 4 0"/>',
  close: '<path d="M6 6l12 12M18 6L6 18"/>',
  speaker: '<path d="M4 9.5h3.5L12 5.5v13l-4.5-4H4zM15.5 9a4 4 0 0 1 0 6M18 6.5a7.5 7.5 0 0 1 0 11"/>',
};

function icon(name) {
  const span = h('span', { class: 'icon', 'aria-hidden': 'true' });
  span.innerHTML = `<svg viewBox="0 0 24 24" focusable="false" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">${ICONS[name]}</svg>`;
  return span;
}

/** m:ss (or h:mm:ss) for a duration in milliseconds. */
function fmtDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const pad = (n) => String(n).padStart(2, '0');
  const hours = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return hours ? `${hours}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

function fmtWhen(ms) {
  const d = new Date(ms);
  const time = d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (d.toDateString() === today.toDateString()) return time;
  if (d.toDateString() === yesterday.toDateString()) return `Yesterday ${time}`;
  return `${d.toLocaleDateString(undefined, { day: 'numeric', month: 'short' })} ${time}`;
}

function initial(name) {
  return (Array.from(name.trim())[0] || '?').toUpperCase();
}

// ---------------------------------------------------------------------------------------
// The hub API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Calls the hub; resolves to the JSON body, rejects with an ApiError carrying a sentence. */
async function api(method, path, body, cred = S.cred) {
  const headers = { Accept: 'application/json' };
  if (cred) headers.Authorization = `Bearer ${cred}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'network', 'Cannot reach the hub. Check the network and try again.');
  }
  const text = await res.text().catch(() => '');
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = undefined;
  }
  if (!res.ok) {
    const message = data && typeof data.message === 'string' && data.message
      ? data.message
      : `The hub answered with an error (HTTP ${res.status}).`;
    throw new ApiError(res.status, (data && data.error) || `http_${res.status}`, message);
  }
  if (data === undefined) throw new ApiError(res.status, 'bad_response', 'The hub sent an answer this page does not understand.');
  return data;
}

// ---------------------------------------------------------------------------------------
// State

const S = {
  cred: null,
  me: null, // {identity, displayName?}
  contacts: new Map(), // identity → contact
  history: [],
  state: 'idle',
  call: null,
  message: null,
  ws: null,
  wsBackoff: WS_BACKOFF_MIN_MS,
  wsTimer: 0,
  wsStableTimer: 0,
  online: true,
  pollTimer: 0,
  endedTimer: 0,
  tickTimer: 0,
  frames: 0,
  setup: {}, // see callboxDebug.setup
  el: {}, // elements of the signed-in screen
};

const nameOf = (identity) => {
  const c = S.contacts.get(identity);
  return (c && c.displayName) || identity;
};
const isActive = () => S.call != null;

// ---------------------------------------------------------------------------------------
// Sign-in and session

function renderSignin(error, busyText) {
  stopSession();
  const input = h('input', {
    id: 'cred', type: 'password', testid: 'signin-credential', autocomplete: 'current-password',
    spellcheck: 'false', autocapitalize: 'off', required: true, 'aria-describedby': 'cred-hint',
  });
  const submit = h('button', { type: 'submit', class: 'btn primary', testid: 'signin-submit' }, 'Sign in');
  const errorBox = h('div', { class: 'signin-error-slot' });
  const showError = (msg) => errorBox.replaceChildren(msg ? h('p', { class: 'error', role: 'alert', testid: 'signin-error' }, msg) : '');
  showError(error);
  const form = h('form', {
    class: 'card signin', novalidate: true,
    onsubmit: async (e) => {
      e.preventDefault();
      const cred = input.value.trim();
      if (!cred) { showError('Enter the credential the hub printed.'); input.focus(); return; }
      submit.disabled = true;
      submit.textContent = 'Signing in…';
      const err = await startSession(cred, false);
      if (err) {
        submit.disabled = false;
        submit.textContent = 'Sign in';
        showError(err);
        input.focus();
      }
    },
  },
  h('h1', {}, icon('video'), ' callbox'),
  h('p', { class: 'lead' }, busyText || 'Sign in to call your family’s boxes.'),
  h('label', { for: 'cred' }, 'Credential'),
  input,
  h('p', { id: 'cred-hint', class: 'hint' }, 'The credential the hub printed for you, or open the one-time sign-in link you were sent.'),
  errorBox,
  submit);
  const root = document.getElementById('app');
  root.className = 'signin-screen';
  root.replaceChildren(form);
  if (!busyText) input.focus();
}

/** Checks `cred` with GET /api/me and opens the app; returns an error sentence on failure. */
async function startSession(cred, fromStorage) {
  let me;
  try {
    me = await api('GET', '/api/me', undefined, cred);
  } catch (e) {
    if (e.status === 401) {
      localStorage.removeItem(KEY_CRED);
      localStorage.removeItem(KEY_ME);
      return fromStorage ? 'Your saved sign-in is no longer valid. Please sign in again.'
        : 'The hub does not know that credential. Check it and try again.';
    }
    // A hub that is restarting must not sign a saved session out: start offline.
    const cached = fromStorage && (e.status === 0 || e.status >= 500) && readCachedMe();
    if (!cached) return e.message;
    me = cached;
  }
  if (!me || typeof me.identity !== 'string') return 'The hub sent an answer this page does not understand.';
  S.cred = cred;
  S.me = me;
  localStorage.setItem(KEY_CRED, cred);
  localStorage.setItem(KEY_ME, JSON.stringify({ identity: me.identity, displayName: me.displayName }));
  renderApp();
  connectWs();
  refreshContacts();
  refreshHistory();
  S.pollTimer = setInterval(refreshContacts, CONTACTS_POLL_MS);
  return null;
}

function readCachedMe() {
  try {
    const me = JSON.parse(localStorage.getItem(KEY_ME) || 'null');
    return me && typeof me.identity === 'string' ? me : null;
  } catch {
    return null;
  }
}

/** Stops timers and the WebSocket of a session (the UI is replaced by the caller). */
function stopSession() {
  clearInterval(S.pollTimer);
  clearTimeout(S.wsTimer);
  clearTimeout(S.wsStableTimer);
  clearTimeout(S.endedTimer);
  const ws = S.ws;
  S.ws = null;
  if (ws) ws.close(1000);
  S.cred = null;
  S.contacts = new Map();
  S.history = [];
  S.message = null;
  S.state = 'idle';
  S.online = true;
  S.el = {};
}

async function signOut() {
  if (S.call) endCall(null, { notifyHub: true });
  const cred = S.cred;
  localStorage.removeItem(KEY_CRED);
  localStorage.removeItem(KEY_ME);
  renderSignin(null);
  if (cred) api('POST', '/api/signout', {}, cred).catch(() => {});
}

/** A 401 from a poller: the hub no longer knows this credential. */
function onAuthLost(e) {
  if (!e || e.status !== 401 || !S.cred) return false;
  if (S.call) endCall(null, { notifyHub: false });
  localStorage.removeItem(KEY_CRED);
  localStorage.removeItem(KEY_ME);
  renderSignin('You were signed out: the hub no longer accepts this sign-in. Please sign in again.');
  return true;
}

// ---------------------------------------------------------------------------------------
// The signed-in screen

function renderApp() {
  const E = (S.el = {});
  E.me = h('span', { class: 'me', testid: 'me' }, S.me.displayName || S.me.identity);
  E.notify = h('button', { type: 'button', class: 'btn small', onclick: enableNotifications }, icon('bell'), 'Enable notifications');
  E.notify.hidden = !('Notification' in window) || Notification.permission !== 'default';
  const top = h('header', { class: 'topbar' },
    h('div', { class: 'brand' }, icon('video'), 'callbox'),
    h('div', { class: 'who' }, 'Signed in as ', E.me),
    E.notify,
    h('button', { type: 'button', class: 'btn small', testid: 'signout', onclick: signOut }, 'Sign out'));
  E.bannerSlot = h('div');
  E.callState = h('p', { class: 'call-state', testid: 'call-state', role: 'status', 'data-state': 'idle' }, 'Ready');
  E.messageSlot = h('div', { 'aria-live': 'polite' });
  E.contacts = h('ul', { class: 'list contacts', 'aria-label': 'Contacts' });
  E.contactsEmpty = h('p', { class: 'empty' }, 'Loading contacts…');
  E.history = h('ul', { class: 'list history', 'aria-label': 'Recent calls' });
  E.historyEmpty = h('p', { class: 'empty' }, 'No calls yet.');
  E.home = h('main', { class: 'home' },
    h('section', {}, h('h2', {}, 'Contacts'), E.contactsEmpty, E.contacts),
    h('section', {}, h('h2', {}, 'Recent calls'), E.historyEmpty, E.history));

  // The call view: a persistent stage (videos keep their tracks across states) and
  // per-state controls.
  E.remoteVideo = h('video', { class: 'remote', testid: 'remote-video', autoplay: true, playsinline: true, muted: true });
  E.remoteVideo.muted = true;
  E.selfView = h('video', { class: 'self mirror', testid: 'self-view', autoplay: true, playsinline: true, muted: true });
  E.selfView.muted = true;
  E.selfView.hidden = true;
  E.peerCard = h('div', { class: 'peer-card' });
  E.timer = h('span', { class: 'pill', testid: 'call-timer' }, '0:00');
  E.quality = h('span', { class: 'pill', testid: 'quality' }, 'Connection: checking');
  E.reconnecting = h('span', { class: 'pill warn', role: 'status' }, 'Reconnecting…');
  E.reconnecting.hidden = true;
  E.soundBtn = h('button', { type: 'button', class: 'btn small', onclick: () => S.call && S.call.room && S.call.room.startAudio().catch(() => {}) }, icon('speaker'), 'Tap to turn on sound');
  E.soundBtn.hidden = true;
  E.hud = h('div', { class: 'hud' }, E.timer, E.quality, E.reconnecting, E.soundBtn);
  E.stage = h('div', { class: 'stage' }, E.remoteVideo, E.peerCard, E.hud, E.selfView);
  E.controls = h('div', { class: 'controls' });
  E.audio = h('div', { hidden: true });
  E.callView = h('section', { class: 'call', 'aria-label': 'Call', tabindex: '-1' }, E.stage, E.controls, E.audio);
  E.callView.hidden = true;

  const root = document.getElementById('app');
  root.className = 'app';
  root.replaceChildren(top, E.bannerSlot, E.callState, E.messageSlot, E.home, E.callView);
  startFrameCounter(E.remoteVideo);
  setState('idle');
  renderMessage();
}

function setState(state) {
  clearTimeout(S.endedTimer);
  S.state = state;
  const E = S.el;
  if (!E.callState) return;
  const c = S.call;
  const words = {
    idle: 'Ready',
    outgoing: c ? `Calling ${c.peerName}…` : 'Calling…',
    incoming: c ? `Incoming ${c.callType} call from ${c.peerName}` : 'Incoming call',
    connecting: 'Connecting…',
    'in-call': c ? `In call with ${c.peerName}${c.reconnecting ? ' — reconnecting…' : ''}` : 'In call',
    ended: 'Call ended',
  }[state];
  E.callState.dataset.state = state;
  E.callState.textContent = words;
  const inCallView = c != null && state !== 'idle' && state !== 'ended';
  E.callView.hidden = !inCallView;
  E.home.hidden = inCallView;
  document.body.classList.toggle('in-call-view', inCallView);
  document.title = state === 'incoming' && c ? `Incoming call — ${c.peerName}` : 'callbox';
  if (state === 'ended') S.endedTimer = setTimeout(() => S.state === 'ended' && setState('idle'), ENDED_TO_IDLE_MS);
  clearInterval(S.tickTimer);
  if (state === 'in-call') S.tickTimer = setInterval(updateHud, 1000);
  renderCallView();
}

function setMessage(text) {
  S.message = text || null;
  renderMessage();
}

function renderMessage() {
  const slot = S.el.messageSlot;
  if (!slot) return;
  slot.replaceChildren(S.message ? h('div', { class: 'message' },
    h('p', { testid: 'call-message' }, S.message),
    h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Dismiss message', onclick: () => setMessage(null) }, icon('close'))) : '');
}

function setOnline(online) {
  S.online = online;
  const slot = S.el.bannerSlot;
  if (!slot) return;
  slot.replaceChildren(online ? '' : h('div', { class: 'banner', role: 'alert', testid: 'offline-banner' },
    h('span', {}, 'Offline — reconnecting to the hub…'),
    h('button', { type: 'button', class: 'btn small', onclick: () => { S.wsBackoff = WS_BACKOFF_MIN_MS; connectWs(); } }, 'Retry now')));
}

// ---------------------------------------------------------------------------------------
// Contacts and history

async function refreshContacts() {
  if (!S.cred) return;
  let list;
  try {
    list = await api('GET', '/api/contacts');
  } catch (e) {
    if (!onAuthLost(e) && S.el.contactsEmpty && !S.contacts.size) S.el.contactsEmpty.textContent = `Cannot load contacts: ${e.message}`;
    return;
  }
  if (!Array.isArray(list) || !S.cred || !S.el.contacts) return;
  S.contacts = new Map(list.map((c) => [c.identity, c]));
  renderContacts(list);
}

function renderContacts(list) {
  const ul = S.el.contacts;
  const old = new Map(Array.from(ul.children, (li) => [li.dataset.identity, li]));
  const rows = list.map((c) => {
    const name = c.displayName || c.identity;
    const presence = c.presence || 'offline';
    let li = old.get(c.identity);
    if (!li) {
      li = h('li', { class: 'row contact', testid: 'contact', 'data-identity': c.identity },
        h('span', { class: 'avatar', 'aria-hidden': 'true' }),
        h('div', { class: 'row-main' }, h('div', { class: 'name' }), h('div', { class: 'meta' }, h('span', { class: 'dot' }), h('span', { class: 'presence' }))),
        h('div', { class: 'row-actions' },
          h('button', { type: 'button', class: 'btn call', testid: 'call-video', onclick: () => placeCall(c.identity, 'video') }, icon('video'), h('span', {}, 'Video')),
          h('button', { type: 'button', class: 'btn call', testid: 'call-audio', onclick: () => placeCall(c.identity, 'audio') }, icon('phone'), h('span', {}, 'Audio'))));
    }
    li.dataset.presence = presence;
    li.querySelector('.avatar').textContent = initial(name);
    li.querySelector('.name').textContent = name;
    li.querySelector('.dot').className = `dot ${presence}`;
    const kind = c.kind === 'device' ? 'box' : 'person';
    li.querySelector('.presence').textContent = `${PRESENCE_WORDS[presence] || presence} · ${kind}`;
    li.querySelector('[data-testid="call-video"]').setAttribute('aria-label', `Video call ${name}`);
    li.querySelector('[data-testid="call-audio"]').setAttribute('aria-label', `Audio call ${name}`);
    return li;
  });
  rows.forEach((li, i) => { if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] || null); });
  while (ul.children.length > rows.length) ul.lastElementChild.remove();
  S.el.contactsEmpty.textContent = 'No contacts yet. The hub’s administrator decides whom you may call.';
  S.el.contactsEmpty.hidden = rows.length > 0;
}

async function refreshHistory() {
  if (!S.cred) return;
  let list;
  try {
    list = await api('GET', '/api/calls/history?limit=50');
  } catch (e) {
    onAuthLost(e);
    return;
  }
  if (!Array.isArray(list) || !S.cred || !S.el.history) return;
  S.history = list;
  renderHistory(list);
}

/** What one history row says, from my side of the call. */
function describeCall(r) {
  const me = S.me.identity;
  const invitees = Array.isArray(r.invitees) ? r.invitees : [];
  const outgoing = r.inviter === me;
  const peers = outgoing ? invitees.map((i) => i.identity).filter((id) => id !== me) : [r.inviter];
  const peer = peers[0] || r.inviter;
  const mine = invitees.find((i) => i.identity === me);
  let result;
  if (r.answeredAtMs != null) {
    if (r.status === 'connected') result = 'in progress';
    else result = r.endedAtMs != null ? `answered ${fmtDuration(r.endedAtMs - r.answeredAtMs)}` : 'answered';
  } else if (r.status === 'ringing' || r.status === 'initiating') {
    result = 'ringing';
  } else if (r.status === 'failed') {
    result = 'failed';
  } else if (outgoing) {
    const refused = invitees.find((i) => i.reason);
    if (r.status === 'cancelled') result = 'cancelled';
    else if (refused) result = REASON_WORDS[refused.reason] || refused.reason;
    else if (r.status === 'missed' || invitees.some((i) => i.status === 'missed')) result = 'no answer';
    else if (r.status === 'rejected') result = 'declined';
    else result = r.status;
  } else {
    const reason = mine && mine.reason;
    result = reason && reason !== 'no_answer' ? REASON_WORDS[reason] || reason : 'missed';
  }
  const missed = !outgoing && r.answeredAtMs == null && result === 'missed';
  return { outgoing, missed, peer, peerNames: peers.map(nameOf).join(', ') || nameOf(peer), result };
}

function renderHistory(list) {
  const ul = S.el.history;
  const old = new Map(Array.from(ul.children, (li) => [li.dataset.callId, li]));
  const rows = list.map((r) => {
    const d = describeCall(r);
    const key = JSON.stringify([d, r.callType, r.createdAtMs]);
    const prev = old.get(r.callId);
    if (prev && prev.dataset.key === key) return prev;
    const kindWords = `${d.missed ? 'Missed' : d.outgoing ? 'Outgoing' : 'Incoming'} ${r.callType === 'audio' ? 'audio' : 'video'} call`;
    return h('li', { class: `row history-row${d.missed ? ' missed' : ''}`, testid: 'history-item', 'data-call-id': r.callId, 'data-key': key },
      h('span', { class: 'dir', title: kindWords }, icon(d.outgoing ? 'outgoing' : 'incoming')),
      h('div', { class: 'row-main' },
        h('div', { class: 'name' }, d.peerNames),
        h('div', { class: 'meta' }, `${kindWords} · `, h('time', { datetime: new Date(r.createdAtMs).toISOString() }, fmtWhen(r.createdAtMs)), ' · ', h('span', { class: 'result' }, d.result))),
      h('div', { class: 'row-actions' },
        h('button', { type: 'button', class: 'btn call', testid: 'callback', 'aria-label': `Call back ${nameOf(d.peer)} (${r.callType === 'audio' ? 'audio' : 'video'})`, onclick: () => placeCall(d.peer, r.callType === 'audio' ? 'audio' : 'video') },
          icon(r.callType === 'audio' ? 'phone' : 'video'), h('span', {}, 'Call back'))));
  });
  rows.forEach((li, i) => { if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] || null); });
  while (ul.children.length > rows.length) ul.lastElementChild.remove();
  S.el.historyEmpty.hidden = rows.length > 0;
}

// ---------------------------------------------------------------------------------------
// The hub WebSocket

function connectWs() {
  if (!S.cred) return;
  clearTimeout(S.wsTimer);
  clearTimeout(S.wsStableTimer);
  if (S.ws) { const old = S.ws; S.ws = null; old.close(1000); }
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  let ws;
  try {
    ws = new WebSocket(`${proto}//${location.host}/ws?access_token=${encodeURIComponent(S.cred)}`);
  } catch {
    scheduleWs();
    return;
  }
  S.ws = ws;
  ws.onopen = () => {
    if (S.ws !== ws) return;
    setOnline(true);
    S.wsStableTimer = setTimeout(() => { S.wsBackoff = WS_BACKOFF_MIN_MS; }, WS_STABLE_MS);
    refreshMe();
    refreshContacts();
    refreshHistory();
  };
  ws.onmessage = (m) => {
    if (S.ws !== ws || typeof m.data !== 'string') return;
    let ev;
    try { ev = JSON.parse(m.data); } catch { return; }
    if (ev && typeof ev.type === 'string') handleEvent(ev);
  };
  ws.onclose = () => {
    if (S.ws !== ws) return;
    S.ws = null;
    clearTimeout(S.wsStableTimer);
    setOnline(false);
    scheduleWs();
    refreshMe();
  };
}

function scheduleWs() {
  if (!S.cred) return;
  const delay = S.wsBackoff;
  S.wsBackoff = Math.min(delay * 2, WS_BACKOFF_MAX_MS);
  S.wsTimer = setTimeout(connectWs, delay);
}

/** Re-reads /api/me (display name changes; a 401 signs out). */
async function refreshMe() {
  if (!S.cred) return;
  try {
    const me = await api('GET', '/api/me');
    if (me && me.identity && S.el.me) {
      S.me = me;
      S.el.me.textContent = me.displayName || me.identity;
      localStorage.setItem(KEY_ME, JSON.stringify({ identity: me.identity, displayName: me.displayName }));
    }
  } catch (e) {
    onAuthLost(e);
  }
}

function handleEvent(ev) {
  if (ev.type === 'call_invitation') { onInvitation(ev); return; }
  const c = S.call;
  // An outgoing call whose invite has not answered yet: keep events for when its id is known.
  if (c && c.early) { c.early.push(ev); return; }
  if (!c || ev.callId !== c.callId) {
    if (ev.type === 'call_cancelled' || ev.type === 'call_ended') refreshHistory();
    return;
  }
  switch (ev.type) {
    case 'invitation_accepted':
      if (c.dir === 'out') { c.accepted = true; stopTone(); maybeInCall(c); }
      break;
    case 'invitation_rejected':
      if (c.dir === 'out') endCall(rejectedWords(ev.reason, nameOf(ev.invitee || c.peer)));
      break;
    case 'call_cancelled':
      if (c.dir === 'in') endCall(S.state === 'incoming' ? `Missed call from ${c.peerName}` : `${c.peerName} hung up`);
      break;
    case 'call_ended':
      endCall(endedWords(c, ev.reason));
      break;
    default:
      break;
  }
}

function rejectedWords(reason, name) {
  switch (reason) {
    case 'busy': return `${name} is busy`;
    case 'declined': return `${name} declined the call`;
    case 'dnd': return `${name} is set to do not disturb`;
    case 'no_answer': return `No answer from ${name}`;
    default: return `${name} did not take the call`;
  }
}

function endedWords(c, reason) {
  if (c.startedAt) return `Call ended — ${fmtDuration(Date.now() - c.startedAt)}`;
  if (c.dir === 'in') return `Missed call from ${c.peerName}`;
  if (reason === 'missed' || reason === 'no_answer') return `No answer from ${c.peerName}`;
  return 'Call ended';
}

// ---------------------------------------------------------------------------------------
// The call state machine

function newCall(fields) {
  clearTimeout(S.endedTimer);
  S.frames = 0;
  const c = {
    dir: 'out', peer: '', peerName: '', callType: 'video', callId: null, invitationId: null,
    room: null, roomConnected: false, accepted: false, startedAt: 0, early: null,
    muted: false, cameraOff: false, reconnecting: false, quality: null, remoteVideo: null,
    videoInputs: 0, notification: null, returnFocus: document.activeElement,
    ...fields,
  };
  S.call = c;
  S.setup = { placedUnixMs: null, connectedUnixMs: null, videoSubscribedUnixMs: null, firstFrameUnixMs: null };
  setMessage(null);
  return c;
}

async function placeCall(identity, callType) {
  if (isActive() || !S.cred) return;
  unlockAudio();
  const c = newCall({ dir: 'out', peer: identity, peerName: nameOf(identity), callType, early: [] });
  setState('outgoing');
  startTone('ringback');
  let info;
  try {
    S.setup.placedUnixMs = Date.now();
    info = await api('POST', '/api/calls/invite', { callType, invitees: [identity] });
  } catch (e) {
    // The hub's sentence for not_allowed names the admin command; a caller needs words.
    const why = e.code === 'not_allowed'
      ? `You may not call ${c.peerName}. Ask its owner to add you to its contacts.`
      : e.message;
    if (S.call === c) endCall(why);
    return;
  }
  if (S.call !== c) { // cancelled while the invite was on its way
    if (info && info.callId) api('POST', '/api/calls/end', { callId: info.callId, reason: 'cancelled' }).catch(() => {});
    return;
  }
  c.callId = info.callId;
  const early = c.early;
  c.early = null;
  early.forEach(handleEvent);
  if (S.call === c) await joinRoom(c, info);
}

function onInvitation(ev) {
  const c = S.call;
  if (c && c.invitationId === ev.invitationId) return; // re-sent after a reconnect
  if (c) { // already in a call (or ringing): the caller hears "busy"
    api('POST', '/api/calls/invitations/respond', { invitationId: ev.invitationId, action: 'reject', reason: 'busy' }).catch(() => {});
    return;
  }
  const call = newCall({
    dir: 'in', peer: ev.inviter, peerName: ev.inviterName || nameOf(ev.inviter),
    callType: ev.callType === 'audio' ? 'audio' : 'video', callId: ev.callId, invitationId: ev.invitationId,
  });
  setState('incoming');
  startTone('ring');
  notifyIncoming(call);
}

async function acceptCall() {
  const c = S.call;
  if (!c || S.state !== 'incoming') return;
  unlockAudio();
  stopTone();
  closeNotification(c);
  c.accepted = true;
  setState('connecting');
  let info;
  try {
    info = await api('POST', '/api/calls/invitations/respond', { invitationId: c.invitationId, action: 'accept' });
  } catch (e) {
    if (S.call === c) endCall(e.message);
    return;
  }
  if (S.call !== c) { // hung up while accepting
    api('POST', '/api/calls/end', { callId: info.callId || c.callId, reason: 'hangup' }).catch(() => {});
    return;
  }
  c.callId = info.callId || c.callId;
  await joinRoom(c, info);
}

function declineCall() {
  const c = S.call;
  if (!c || S.state !== 'incoming') return;
  api('POST', '/api/calls/invitations/respond', { invitationId: c.invitationId, action: 'reject', reason: 'declined' })
    .catch((e) => setMessage(`Could not decline the call: ${e.message}`));
  endCall(`You declined the call from ${c.peerName}`);
}

function cancelCall() {
  if (S.call && S.state === 'outgoing') endCall('Call cancelled', { notifyHub: true, reason: 'cancelled' });
}

function hangUp() {
  const c = S.call;
  if (c) endCall(c.startedAt ? `Call ended — ${fmtDuration(Date.now() - c.startedAt)}` : 'Call ended', { notifyHub: true });
}

function maybeInCall(c) {
  if (S.call !== c || !c.accepted) return;
  if (!c.roomConnected) { setState('connecting'); return; }
  if (S.state === 'in-call') return;
  c.startedAt = Date.now();
  stopTone();
  setState('in-call');
}

/** Ends the current call: media off, back to the main screen with `message`. */
function endCall(message, { notifyHub = false, reason = 'hangup' } = {}) {
  const c = S.call;
  if (!c) return;
  S.call = null;
  stopTone();
  closeNotification(c);
  // An incoming call we never accepted is not ours to end: it may ring on elsewhere.
  if (notifyHub && c.callId && (c.dir === 'out' || c.accepted)) {
    api('POST', '/api/calls/end', { callId: c.callId, reason }).catch(() => {});
  }
  teardownMedia(c);
  if (message) setMessage(message);
  setState('ended');
  const back = c.returnFocus;
  if (back && back.isConnected && typeof back.focus === 'function') back.focus();
  refreshContacts();
  refreshHistory();
}

// ---------------------------------------------------------------------------------------
// LiveKit media

async function joinRoom(c, info) {
  const room = new Room({
    adaptiveStream: false,
    dynacast: false,
    publishDefaults: { videoCodec: 'vp8', simulcast: false },
    videoCaptureDefaults: { resolution: { width: 640, height: 480, frameRate: 30 } },
    audioCaptureDefaults: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  });
  c.room = room;
  wireRoom(c, room);
  try {
    await room.connect(info.url, info.token);
  } catch (e) {
    if (S.call === c) endCall(`Could not connect the call: ${e.message || e}`, { notifyHub: true, reason: 'media_failed' });
    return;
  }
  if (S.call !== c) { room.disconnect(); return; }
  c.roomConnected = true;
  S.setup.connectedUnixMs = Date.now();
  room.startAudio().catch(() => {});
  E().soundBtn.hidden = room.canPlaybackAudio;
  c.quality = room.localParticipant.connectionQuality;
  room.remoteParticipants.forEach((p) => p.trackPublications.forEach((pub) => {
    if (pub.track && pub.isSubscribed) onRemoteTrack(c, pub.track);
  }));
  maybeInCall(c);
  await publishLocal(c, room);
  refreshDevices(c);
}

async function publishLocal(c, room) {
  const lp = room.localParticipant;
  try {
    if (c.callType === 'video') await lp.enableCameraAndMicrophone();
    else await lp.setMicrophoneEnabled(true);
  } catch (e) {
    if (S.call !== c) return;
    if (c.callType === 'video') {
      try {
        await lp.setMicrophoneEnabled(true);
        c.cameraOff = true;
        setMessage(`The camera is not available (${e.message || e}); the other side only hears you.`);
      } catch (e2) {
        setMessage(`Microphone and camera are not available (${e2.message || e2}).`);
      }
    } else {
      setMessage(`The microphone is not available (${e.message || e}).`);
    }
  }
  if (S.call !== c) { lp.trackPublications.forEach((p) => p.track && p.track.stop()); return; }
  attachSelf(c);
  renderCallView();
}

function wireRoom(c, room) {
  const stamp = (key) => { if (S.call === c && !S.setup[key]) S.setup[key] = Date.now(); };
  room
    .on(RoomEvent.ParticipantConnected, () => stamp('peerJoinedUnixMs'))
    .on(RoomEvent.TrackPublished, (pub) => { if (pub.kind === Track.Kind.Video) stamp('videoPublishedUnixMs'); })
    .on(RoomEvent.TrackSubscribed, (track) => {
      if (S.call !== c) return;
      if (track.kind === Track.Kind.Video) stamp('videoSubscribedUnixMs');
      onRemoteTrack(c, track);
    })
    .on(RoomEvent.TrackUnsubscribed, (track) => onRemoteTrackGone(c, track))
    .on(RoomEvent.TrackMuted, () => S.call === c && updateStage())
    .on(RoomEvent.TrackUnmuted, () => S.call === c && updateStage())
    .on(RoomEvent.ParticipantDisconnected, (p) => {
      p.trackPublications.forEach((pub) => pub.track && onRemoteTrackGone(c, pub.track));
    })
    .on(RoomEvent.LocalTrackPublished, () => S.call === c && attachSelf(c))
    .on(RoomEvent.ConnectionQualityChanged, (quality, p) => {
      if (S.call === c && p === room.localParticipant) { c.quality = quality; updateHud(); }
    })
    .on(RoomEvent.Reconnecting, () => { if (S.call === c) { c.reconnecting = true; setState(S.state); } })
    .on(RoomEvent.Reconnected, () => { if (S.call === c) { c.reconnecting = false; setState(S.state); } })
    .on(RoomEvent.AudioPlaybackStatusChanged, () => { if (S.call === c) E().soundBtn.hidden = room.canPlaybackAudio; })
    .on(RoomEvent.MediaDevicesChanged, () => S.call === c && refreshDevices(c))
    .on(RoomEvent.Disconnected, () => {
      // Not by us (we set S.call = null first): the room is gone or the network gave up.
      if (S.call === c && c.roomConnected) endCall(endedWords(c, 'disconnected'), { notifyHub: true, reason: 'disconnected' });
    });
}

function onRemoteTrack(c, track) {
  if (track.kind === Track.Kind.Audio) {
    if (track.attachedElements.length) return;
    const el = track.attach();
    E().audio.append(el);
  } else if (track.kind === Track.Kind.Video && !c.remoteVideo) {
    c.remoteVideo = track;
    track.attach(E().remoteVideo);
    E().remoteVideo.play().catch(() => {});
  }
  updateStage();
}

function onRemoteTrackGone(c, track) {
  if (track.kind === Track.Kind.Audio) {
    track.detach().forEach((el) => el.remove());
  } else if (c.remoteVideo === track) {
    track.detach(E().remoteVideo);
    c.remoteVideo = null;
    if (S.call === c && c.room) { // another remote camera, if any, takes the stage
      for (const p of c.room.remoteParticipants.values()) {
        for (const pub of p.videoTrackPublications.values()) {
          if (!c.remoteVideo && pub.track && pub.track !== track && pub.isSubscribed) onRemoteTrack(c, pub.track);
        }
      }
    }
  }
  if (S.call === c) updateStage();
}

function attachSelf(c) {
  const pub = c.room && c.room.localParticipant.getTrackPublication(Track.Source.Camera);
  const track = pub && pub.track;
  if (track && !track.attachedElements.includes(E().selfView)) track.attach(E().selfView);
  if (track) {
    const facing = track.mediaStreamTrack && track.mediaStreamTrack.getSettings ? track.mediaStreamTrack.getSettings().facingMode : undefined;
    E().selfView.classList.toggle('mirror', facing !== 'environment');
  }
  updateStage();
}

function teardownMedia(c) {
  const room = c.room;
  c.room = null;
  if (c.remoteVideo) c.remoteVideo.detach(E().remoteVideo);
  c.remoteVideo = null;
  if (room) {
    room.localParticipant.trackPublications.forEach((p) => p.track && p.track.stop());
    room.disconnect(true).catch(() => {});
  }
  if (E().remoteVideo) {
    E().remoteVideo.srcObject = null;
    E().selfView.srcObject = null;
    E().audio.replaceChildren();
  }
}

async function refreshDevices(c) {
  if (S.call !== c || !c.room) return;
  try {
    c.videoInputs = (await Room.getLocalDevices('videoinput', false)).length;
    c.outputs = supportsAudioOutputSelection() ? await Room.getLocalDevices('audiooutput', false) : [];
  } catch {
    c.videoInputs = 0;
    c.outputs = [];
  }
  if (S.call === c) renderCallView();
}

async function toggleMute() {
  const c = S.call;
  if (!c || !c.room) return;
  const muted = !c.muted;
  try {
    await c.room.localParticipant.setMicrophoneEnabled(!muted);
    c.muted = muted;
  } catch (e) {
    setMessage(`Could not change the microphone: ${e.message || e}`);
  }
  renderCallView();
}

async function toggleCamera() {
  const c = S.call;
  if (!c || !c.room || c.callType !== 'video') return;
  const off = !c.cameraOff;
  try {
    await c.room.localParticipant.setCameraEnabled(!off);
    c.cameraOff = off;
    if (!off) attachSelf(c);
  } catch (e) {
    setMessage(`Could not change the camera: ${e.message || e}`);
  }
  renderCallView();
}

async function switchCamera() {
  const c = S.call;
  if (!c || !c.room) return;
  try {
    const cams = await Room.getLocalDevices('videoinput', false);
    if (cams.length < 2) return;
    const current = c.room.getActiveDevice('videoinput');
    const i = cams.findIndex((d) => d.deviceId === current);
    await c.room.switchActiveDevice('videoinput', cams[(i + 1) % cams.length].deviceId);
    attachSelf(c);
  } catch (e) {
    setMessage(`Could not switch the camera: ${e.message || e}`);
  }
}

async function chooseSpeaker(deviceId) {
  const c = S.call;
  if (!c || !c.room) return;
  try {
    await c.room.switchActiveDevice('audiooutput', deviceId);
  } catch (e) {
    setMessage(`Could not change the speaker: ${e.message || e}`);
  }
}

// ---------------------------------------------------------------------------------------
// The call view

const E = () => S.el;

function renderCallView() {
  const c = S.call;
  const el = E();
  if (!el.controls) return;
  const state = S.state;
  if (!c || state === 'idle' || state === 'ended') {
    el.controls.replaceChildren();
    el.peerCard.replaceChildren();
    return;
  }
  // Peer card: who, and what is happening.
  const sub = {
    outgoing: `Calling… (${c.callType === 'audio' ? 'audio' : 'video'} call)`,
    incoming: `is calling you · ${c.callType === 'audio' ? 'audio' : 'video'} call`,
    connecting: 'Connecting…',
    'in-call': c.callType === 'audio' ? 'Audio call' : '',
  }[state];
  const nameEl = state === 'incoming'
    ? h('div', { class: 'peer-name', testid: 'incoming-from' }, c.peerName)
    : h('div', { class: 'peer-name', testid: 'peer-name' }, c.peerName);
  el.peerCard.replaceChildren(h('div', { class: 'avatar big', 'aria-hidden': 'true' }, initial(c.peerName)), nameEl, sub ? h('div', { class: 'peer-sub' }, sub) : '');

  // Controls per state; focus goes where Enter does the expected thing.
  const prevFocus = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.testid : null;
  const ctl = (testid, iconName, label, onclick, cls = '') => h('button', { type: 'button', class: `ctl ${cls}`, testid, onclick }, icon(iconName), h('span', {}, label));
  let kids = [];
  if (state === 'outgoing') {
    kids = [ctl('cancel', 'hangup', 'Cancel', cancelCall, 'danger')];
  } else if (state === 'incoming') {
    kids = [ctl('decline', 'hangup', 'Decline', declineCall, 'danger'), ctl('accept', c.callType === 'audio' ? 'phone' : 'video', 'Accept', acceptCall, 'go')];
  } else if (state === 'connecting') {
    kids = [ctl('hangup', 'hangup', 'Hang up', hangUp, 'danger')];
  } else if (state === 'in-call') {
    const mute = ctl('mute', c.muted ? 'micOff' : 'mic', 'Mute', toggleMute, c.muted ? 'on' : '');
    mute.setAttribute('aria-pressed', String(c.muted));
    const cam = ctl('camera', c.cameraOff ? 'videoOff' : 'video', 'Camera off', toggleCamera, c.cameraOff ? 'on' : '');
    cam.setAttribute('aria-pressed', String(c.cameraOff));
    cam.hidden = c.callType !== 'video';
    const flip = ctl('switch-camera', 'flip', 'Switch camera', switchCamera);
    flip.hidden = c.callType !== 'video' || c.cameraOff || c.videoInputs < 2;
    const outputs = c.outputs || [];
    const active = c.room ? c.room.getActiveDevice('audiooutput') : undefined;
    const speaker = h('select', { class: 'speaker', testid: 'speaker', 'aria-label': 'Speaker', onchange: (e) => chooseSpeaker(e.target.value) },
      outputs.map((d, i) => h('option', { value: d.deviceId, selected: d.deviceId === active }, d.label || `Speaker ${i + 1}`)));
    const speakerWrap = h('label', { class: 'ctl select' }, icon('speaker'), speaker);
    speakerWrap.hidden = outputs.length < 2;
    kids = [mute, cam, flip, speakerWrap, ctl('hangup', 'hangup', 'Hang up', hangUp, 'danger')];
  }
  el.controls.replaceChildren(...kids);
  const want = prevFocus && el.controls.querySelector(`[data-testid="${prevFocus}"]`);
  if (want && !want.hidden) want.focus();
  else if (state === 'incoming') el.controls.querySelector('[data-testid="accept"]').focus();
  else if (state === 'in-call' && !prevFocus) el.controls.querySelector('[data-testid="mute"]').focus();
  else if (el.callView.contains(document.activeElement) === false) el.callView.focus();
  updateStage();
  updateHud();
}

function updateStage() {
  const c = S.call;
  const el = E();
  if (!el.stage) return;
  const pub = c && c.remoteVideo ? findPublication(c, c.remoteVideo) : null;
  const hasVideo = !!(c && c.callType === 'video' && c.remoteVideo && !(pub && pub.isMuted));
  el.stage.classList.toggle('has-video', hasVideo);
  el.stage.classList.toggle('audio', !!c && c.callType === 'audio');
  el.remoteVideo.hidden = !hasVideo;
  const selfTrack = c && c.room && c.room.localParticipant.getTrackPublication(Track.Source.Camera);
  el.selfView.hidden = !(c && c.callType === 'video' && !c.cameraOff && selfTrack && selfTrack.track);
}

function findPublication(c, track) {
  if (!c.room) return null;
  for (const p of c.room.remoteParticipants.values()) {
    for (const pub of p.trackPublications.values()) if (pub.track === track) return pub;
  }
  return null;
}

function updateHud() {
  const c = S.call;
  const el = E();
  if (!el.hud) return;
  const inCall = !!c && S.state === 'in-call';
  el.hud.hidden = !inCall;
  if (!inCall) return;
  el.timer.textContent = fmtDuration(Date.now() - c.startedAt);
  el.quality.textContent = `Connection: ${QUALITY_WORDS[c.quality] || 'checking'}`;
  el.quality.className = `pill q-${QUALITY_WORDS[c.quality] || 'unknown'}`;
  el.reconnecting.hidden = !c.reconnecting;
}

// ---------------------------------------------------------------------------------------
// Ring tones (WebAudio) and notifications

let audioCtx = null;
let tone = null;

/** Creates or resumes the AudioContext; browsers allow sound after a user gesture. */
function unlockAudio() {
  const AC = window.AudioContext || window.webkitAudioContext;
  if (!AC) return null;
  if (!audioCtx) {
    try { audioCtx = new AC(); } catch { return null; }
  }
  if (audioCtx.state === 'suspended') audioCtx.resume().catch(() => {});
  return audioCtx;
}

/**
 * 'ring' (incoming: two 0.4 s bursts of 400+450 Hz every 3 s) or 'ringback' (outgoing:
 * 440+480 Hz, 2 s on, 4 s off, quiet). The cadence is scheduled on the audio clock for
 * three minutes ahead, so background-tab timer throttling does not break it.
 */
function startTone(kind) {
  stopTone();
  const ctx = unlockAudio();
  if (!ctx) return;
  const out = ctx.createGain();
  out.gain.value = kind === 'ring' ? 0.2 : 0.05;
  out.connect(ctx.destination);
  const env = ctx.createGain();
  env.gain.value = 0;
  env.connect(out);
  const oscs = (kind === 'ring' ? [400, 450] : [440, 480]).map((f) => {
    const o = ctx.createOscillator();
    o.frequency.value = f;
    o.connect(env);
    o.start();
    return o;
  });
  const bursts = kind === 'ring' ? [[0, 0.4], [0.6, 1.0]] : [[0, 2]];
  const period = kind === 'ring' ? 3 : 6;
  const t0 = ctx.currentTime + 0.05;
  for (let t = t0; t < t0 + 180; t += period) {
    for (const [a, b] of bursts) {
      env.gain.setValueAtTime(0, t + a);
      env.gain.linearRampToValueAtTime(1, t + a + 0.02);
      env.gain.setValueAtTime(1, t + b - 0.02);
      env.gain.linearRampToValueAtTime(0, t + b);
    }
  }
  tone = { out, oscs };
}

function stopTone() {
  if (!tone) return;
  tone.oscs.forEach((o) => { try { o.stop(); } catch { /* already stopped */ } });
  tone.out.disconnect();
  tone = null;
}

async function enableNotifications() {
  try {
    await Notification.requestPermission();
  } catch { /* old Safari: callback form only; ignore */ }
  if (S.el.notify) S.el.notify.hidden = Notification.permission !== 'default';
  if (Notification.permission === 'denied') setMessage('Notifications are blocked; the page still rings while it is open.');
}

function notifyIncoming(c) {
  if (!('Notification' in window) || Notification.permission !== 'granted' || !document.hidden) return;
  try {
    const n = new Notification(`${c.peerName} is calling`, {
      body: `${c.callType === 'audio' ? 'Audio' : 'Video'} call — open callbox to answer.`,
      tag: `callbox-${c.invitationId}`,
      requireInteraction: true,
      icon: 'favicon.svg',
    });
    n.onclick = () => { window.focus(); n.close(); };
    c.notification = n;
  } catch { /* e.g. Android Chrome needs a service worker: the ring still plays */ }
}

function closeNotification(c) {
  if (c.notification) { c.notification.close(); c.notification = null; }
}

// ---------------------------------------------------------------------------------------
// Remote frame counting (for the test) and window.callboxDebug

function startFrameCounter(video) {
  if (!('requestVideoFrameCallback' in HTMLVideoElement.prototype)) return;
  const onFrame = (_now, meta) => {
    if (S.call && video.srcObject) {
      S.frames += 1;
      // When the first frame of the call went to the screen, on the page's clock.
      if (S.frames === 1) S.setup.firstFrameUnixMs = performance.timeOrigin + meta.presentationTime;
    }
    if (video.isConnected) video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}

window.callboxDebug = {
  state: () => S.state,
  // Unix ms of the call's invite POST, of the room joined, of the first other
  // participant seen in it (after the page joined), of its first video track published
  // and subscribed, and of its first frame on screen (rVFC's presentationTime); null or
  // absent until they happen. Read by `make bench`.
  setup: () => ({ ...S.setup }),
  remoteVideoFrames: () => {
    const v = S.el.remoteVideo;
    if (!v) return 0;
    if ('requestVideoFrameCallback' in HTMLVideoElement.prototype) return S.frames;
    const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
    return S.call && q ? q.totalVideoFrames : 0;
  },
  remoteVideoSize: () => {
    const v = S.el.remoteVideo;
    return v ? [v.videoWidth, v.videoHeight] : [0, 0];
  },
  micMuted: () => {
    const c = S.call;
    const pub = c && c.room && c.room.localParticipant.getTrackPublication(Track.Source.Microphone);
    return pub ? pub.isMuted : !!(c && c.muted);
  },
  publishedTracks: () => {
    const room = S.call && S.call.room;
    return room ? Array.from(room.localParticipant.trackPublications.values(), (p) => p.kind).sort() : [];
  },
};

// ---------------------------------------------------------------------------------------
// Start

document.addEventListener('keydown', (e) => {
  if (e.key !== 'Escape' || e.defaultPrevented) return;
  if (S.state === 'incoming') { e.preventDefault(); declineCall(); }
  else if (S.state === 'outgoing') { e.preventDefault(); cancelCall(); }
});
// Sound may start only after a gesture: any tap or key arms the ring tone.
document.addEventListener('pointerdown', unlockAudio, { capture: true, passive: true });
document.addEventListener('keydown', unlockAudio, { capture: true });
document.addEventListener('visibilitychange', () => {
  if (document.hidden || !S.cred) return;
  if (S.call) closeNotification(S.call);
  if (!S.ws) { S.wsBackoff = WS_BACKOFF_MIN_MS; connectWs(); }
});
window.addEventListener('online', () => { if (S.cred && !S.ws) { S.wsBackoff = WS_BACKOFF_MIN_MS; connectWs(); } });
// Closing the tab hangs up (or cancels) a call of ours; a ringing invitation keeps ringing elsewhere.
window.addEventListener('pagehide', () => {
  const c = S.call;
  if (!c || !c.callId || S.state === 'incoming' || !S.cred) return;
  fetch('/api/calls/end', {
    method: 'POST', keepalive: true,
    headers: { Authorization: `Bearer ${S.cred}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ callId: c.callId, reason: 'hangup' }),
  }).catch(() => {});
});

/** A one-time link `#signin=<code>`: sign in with it (on load, or pasted into an open tab). */
async function linkSignin() {
  const m = /(?:^#|&)signin=([^&]*)/.exec(location.hash);
  if (!m) return false;
  // The one-time code leaves the address bar (and history) before anything else.
  history.replaceState(null, '', location.pathname + location.search);
  if (S.call) endCall(null, { notifyHub: true });
  renderSignin(null, 'Signing in with your link…');
  let err;
  try {
    const r = await api('POST', '/api/signin', { code: decodeURIComponent(m[1]) }, null);
    if (!r || typeof r.credential !== 'string') throw new ApiError(0, 'bad_response', 'The hub sent an answer this page does not understand.');
    err = await startSession(r.credential, false);
  } catch (e) {
    err = e.status === 401 ? e.message || 'This sign-in link was already used or has expired. Ask for a new one.' : e.message;
    const stored = localStorage.getItem(KEY_CRED);
    if (stored && !(await startSession(stored, true))) { setMessage(err); return true; }
  }
  if (err) renderSignin(err);
  return true;
}

async function boot() {
  window.addEventListener('hashchange', linkSignin);
  if (await linkSignin()) return;
  const stored = localStorage.getItem(KEY_CRED);
  if (!stored) { renderSignin(null); return; }
  renderSignin(null, 'Signing in…');
  const err = await startSession(stored, true);
  if (err) renderSignin(err);
}

boot();
