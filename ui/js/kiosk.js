// The kiosk screen (a gaming center's seat): readable from a chair. A big "Sign in with …"
// button, scan-to-sign-in with a QR code, who is signed in and the time left, a big End
// session button, and the idle warning with "I'm still here". The seat's clock runs in
// the backend; this only shows what its events say.

import { call, onEvent } from './api.js';
import { h, remaining, errorBox, show } from './dom.js';
import { providerButton } from './views.js';

const state = {
  seat: null,
  accounts: [],
  scan: {}, // account -> whether its provider offers scan-to-sign-in
  busy: null, // {account, how: 'browser' | 'device', stage}
  device: null, // the code to show: {account, user_code, verification_uri, qr_svg, expires_at}
  failure: null,
  ended: null, // why the last session ended, shown until the next sign-in
};

const main = document.getElementById('main');

const ENDED = {
  button: 'You ended your session.',
  broker: 'The seat’s time is up.',
  idle: 'The session ended because nobody was here.',
  max_session: 'The session reached its time limit.',
  quit: 'The session ended.',
};

function render() {
  const seat = state.seat ?? {};
  const signedIn = state.accounts.filter((a) => a.status === 'signed_in');
  let content;
  if (state.device) content = deviceScreen();
  else if (state.busy) content = busyScreen();
  else if (seat.active && signedIn.length) content = activeScreen(signedIn, seat);
  else content = welcomeScreen();
  show(main, content);
  renderIdleWarning(seat);
}

function welcomeScreen() {
  return h('section', { class: 'kiosk-screen', 'data-screen': 'kiosk-welcome' },
    h('h1', {}, 'Welcome'),
    h('p', { class: 'kiosk-lead' }, 'Sign in to play. When you leave, press End session: nothing of yours stays on this PC.'),
    state.ended ? h('p', { class: 'kiosk-note', id: 'kiosk-ended', role: 'status' }, ENDED[state.ended] ?? 'The session ended.', ' Nothing of yours is left on this seat.') : null,
    // A sign-out that could not finish everything says so, for the center's staff.
    state.ended && state.seat?.warnings?.length
      ? errorBox({ message: `The sign-out was not complete: ${state.seat.warnings.join('; ')}`, hint: 'tell the staff' })
      : null,
    state.failure ? errorBox(state.failure) : null,
    ...state.accounts.map((a) => h('div', { class: 'kiosk-account' },
      providerButton(a, () => signIn(a.name)),
      state.scan[a.name]
        ? h('button', { type: 'button', class: 'kiosk-secondary', id: `scan-${a.name}`, 'data-account': a.name, onclick: () => scan(a.name) },
          'Scan with your phone')
        : null)));
}

function busyScreen() {
  return h('section', { class: 'kiosk-screen', 'data-screen': 'kiosk-busy', 'aria-busy': 'true' },
    h('h1', {}, 'Finish signing in in the browser window'),
    h('p', { class: 'kiosk-lead' }, 'Type your own username and password there. This seat forgets them, and you, when the session ends.'),
    h('button', { type: 'button', class: 'kiosk-secondary', id: 'kiosk-cancel', 'data-account': state.busy.account, onclick: () => call('cancel', { account: state.busy.account }) }, 'Cancel'));
}

function deviceScreen() {
  const d = state.device;
  return h('section', { class: 'kiosk-screen', 'data-screen': 'kiosk-scan' },
    h('h1', {}, 'Scan to sign in'),
    h('div', { class: 'kiosk-scan' },
      h('img', { class: 'qr', id: 'qr', alt: `QR code for ${d.verification_uri}`, src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(d.qr_svg)}` }),
      h('div', {},
        h('p', { class: 'kiosk-lead' }, 'Scan the code with your phone’s camera and sign in there. Or open'),
        h('p', { class: 'kiosk-url', id: 'verification-uri' }, d.verification_uri),
        h('p', { class: 'kiosk-lead' }, 'and enter'),
        h('p', { class: 'user-code', id: 'user-code' }, d.user_code),
        h('p', { class: 'muted' }, 'The code is good for ', h('span', { 'data-expires': d.expires_at }, remaining(d.expires_at)), '.'))),
    h('button', { type: 'button', class: 'kiosk-secondary', id: 'kiosk-cancel', 'data-account': d.account, onclick: () => call('cancel', { account: d.account }) }, 'Cancel'));
}

function activeScreen(signedIn, seat) {
  return h('section', { class: 'kiosk-screen', 'data-screen': 'kiosk-active' },
    h('h1', { id: 'kiosk-who' }, `Hi, ${signedIn.map((a) => a.person ?? a.name).join(' and ')}`),
    h('p', { class: 'kiosk-lead' }, 'You are signed in on this seat. Apps here can use your sign-in until you end the session.'),
    seat.ends_at
      ? h('p', { class: 'kiosk-time' }, 'Time left: ', h('span', { id: 'seat-remaining', 'data-expires': seat.ends_at }, remaining(seat.ends_at)))
      : null,
    h('button', { type: 'button', class: 'kiosk-end', id: 'end-session', onclick: endSession }, 'End session'),
    h('p', { class: 'muted' }, 'Ending signs you out everywhere this seat signed you in, and erases the browser it used.'));
}

function renderIdleWarning(seat) {
  const dialog = document.getElementById('idle-warning');
  if (seat.active && seat.idle_ends_at) {
    dialog.querySelector('#idle-left').dataset.expires = seat.idle_ends_at;
    dialog.querySelector('#idle-left').textContent = remaining(seat.idle_ends_at);
    if (!dialog.open) {
      dialog.showModal();
      dialog.querySelector('#still-here').focus();
    }
  } else if (dialog.open) {
    dialog.close();
  }
}

// A sign-in in the seat's browser ('sign_in') or on the player's phone ('sign_in_device').
async function begin(account, command) {
  state.failure = null;
  state.ended = null;
  state.busy = { account, how: command === 'sign_in' ? 'browser' : 'device' };
  render();
  try {
    await call(command, { account });
  } catch (e) {
    if (!/cancelled/.test(e.message)) state.failure = e;
  } finally {
    state.busy = null;
    state.device = null;
    render();
  }
}

const signIn = (account) => begin(account, 'sign_in');
const scan = (account) => begin(account, 'sign_in_device');

async function endSession() {
  const button = document.getElementById('end-session');
  button.disabled = true;
  button.textContent = 'Ending…';
  try {
    await call('end_session');
  } catch (e) {
    state.failure = e;
    render();
  }
}

function handle(event) {
  switch (event.type) {
    case 'seat':
      state.seat = event.seat;
      if (!event.seat.active && event.seat.last_ended) state.ended = event.seat.last_ended;
      render();
      break;
    case 'accounts':
      state.accounts = event.accounts;
      render();
      break;
    case 'device_code':
      state.device = { ...event, expires_at: Date.now() / 1000 + event.expires_in };
      render();
      break;
    default:
      break;
  }
}

// Anyone at the seat keeps it alive: input on this screen counts (at most every 5 s).
let lastSeen = 0;
function seen() {
  const now = Date.now();
  if (!state.seat?.active || now - lastSeen < 5000) return;
  lastSeen = now;
  call('still_here').catch(() => {});
}

export async function start(info) {
  document.body.classList.add('kiosk');
  state.seat = info.seat;
  await onEvent(handle);
  state.accounts = await call('accounts');
  document.getElementById('still-here').addEventListener('click', () => {
    lastSeen = Date.now();
    call('still_here');
  });
  for (const type of ['pointerdown', 'keydown']) document.addEventListener(type, seen, { passive: true });
  render();
  // Which providers offer scan-to-sign-in (a discovery each; the buttons appear as known).
  await Promise.all(state.accounts.map(async (a) => {
    state.scan[a.name] = await call('offers_device_flow', { account: a.name }).catch(() => false);
  }));
  render();
}
