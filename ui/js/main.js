// The window: state, navigation, and the model's events. The backend pushes every change
// (lanyard://event); the only timer here redraws countdowns from times already known.

import { call, onEvent } from './api.js';
import { h, remaining, errorBox } from './dom.js';
import * as views from './views.js';

const state = {
  accounts: [],
  presets: [],
  selected: null, // an account name
  view: 'account', // account | add | apps | activity
  progress: {}, // account -> {action, stage, url, message}
  failure: {}, // account -> the last sign-in failure
  identities: {}, // account -> IdentityView
  pictures: {}, // account -> data: URL or null
  approvals: [], // pending prompts, oldest first
  info: null,
};

const main = document.getElementById('main');

function toast(text) {
  const el = document.getElementById('toast');
  el.textContent = text;
  el.classList.add('shown');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.classList.remove('shown'), 3000);
}

function selectedAccount() {
  return state.accounts.find((a) => a.name === state.selected);
}

// A redraw replaces elements; the keyboard focus stays on the same control (by id, or
// by the account it is for), so someone tabbing through never loses their place.
function focusKey() {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  if (el.id) return `#${CSS.escape(el.id)}`;
  if (el.dataset.account) return `[data-account="${CSS.escape(el.dataset.account)}"]`;
  return null;
}

function restoreFocus(key) {
  if (!key || document.activeElement?.matches?.(key)) return;
  document.querySelector(key)?.focus();
}

function renderSidebar() {
  const key = focusKey();
  const list = document.getElementById('accounts');
  list.replaceChildren(...state.accounts.map((a) => views.accountItem(
    a, state.view === 'account' && a.name === state.selected, () => select(a.name))));
  for (const b of document.querySelectorAll('.nav-item')) {
    b.setAttribute('aria-current', b.dataset.view === state.view ? 'page' : 'false');
  }
  const info = state.info;
  const footer = document.getElementById('footer');
  if (!info) { restoreFocus(key); return; }
  const autostart = h('input', {
    type: 'checkbox', id: 'autostart', checked: info.autostart, 'data-enabled': String(info.autostart),
    onchange: async (e) => {
      try { info.autostart = await call('set_autostart', { enabled: e.target.checked }); } catch (err) { toast(err.message); }
      // What the system now has, whatever the click asked for.
      e.target.checked = info.autostart;
      e.target.dataset.enabled = String(info.autostart);
    },
  });
  footer.replaceChildren(
    h('label', { for: 'autostart' }, autostart, 'Start at login'),
    h('div', {}, `Lanyard ${info.version}`),
    info.socket ? h('div', { title: 'Tools reach Lanyard here (LANYARD_SOCK)' }, `Broker: ${info.socket}`) : null,
    h('button', { type: 'button', class: 'link', id: 'quit', onclick: () => call('quit') }, 'Quit Lanyard'));
  restoreFocus(key);
}

async function renderMain() {
  const content = await screen();
  const banner = state.info?.error
    ? h('div', { class: 'banner' }, h('h2', {}, 'The broker is not running'), errorBox(state.info.error))
    : state.info?.scheme_error
      ? h('div', { class: 'banner' }, errorBox({ message: state.info.scheme_error }))
      : null;
  const key = focusKey();
  main.replaceChildren(...[banner, content].filter(Boolean));
  restoreFocus(key);
}

async function screen() {
  if (state.view === 'add') {
    return views.addAccount(state.presets, {
      cancel: () => show('account'),
      check: (issuer) => call('check_provider', { issuer }),
      add: async (form) => {
        state.accounts = await call('add_account', { form });
        state.selected = form.name;
        toast(`Added ${form.name}`);
        show('account');
      },
    });
  }
  if (state.view === 'apps') {
    const rules = await call('apps').catch((e) => e);
    if (!Array.isArray(rules)) return errorBox(rules);
    return views.apps(rules, {
      revoke: async (r) => {
        await call('revoke', { account: r.account, path: r.app });
        toast(`${r.app} will be asked again`);
        render();
      },
    });
  }
  if (state.view === 'activity') {
    const entries = await call('activity').catch(() => []);
    return views.activity(entries);
  }
  const account = selectedAccount();
  if (!account) return views.empty({ add: () => show('add') });
  const p = state.progress[account.name];
  if (p) return views.progress(account, p, { cancel: () => call('cancel', { account: account.name }) });
  const actions = {
    signIn: () => signIn(account.name),
    signOut: () => signOut(account.name),
    remove: () => removeAccount(account.name),
    copy: () => copyToken(account.name),
  };
  const failure = state.failure[account.name];
  if (account.status !== 'signed_in') {
    const el = views.signedOut(account, actions);
    if (failure) el.insertBefore(errorBox(failure), el.querySelector('.actions'));
    return el;
  }
  let id = state.identities[account.name];
  if (!id) {
    try {
      id = await call('identity', { account: account.name });
      state.identities[account.name] = id;
    } catch (e) {
      return errorBox(e);
    }
  }
  if (!(account.name in state.pictures) && id.picture) {
    state.pictures[account.name] = null;
    call('picture', { account: account.name }).then((url) => {
      state.pictures[account.name] = url;
      if (url && state.selected === account.name) render();
    });
  }
  return views.identity(account, id, state.pictures[account.name], actions);
}

let rendering = Promise.resolve();
function render() {
  renderSidebar();
  // One redraw at a time, in order: a slow one never paints over a newer one.
  rendering = rendering.then(renderMain, renderMain);
  return rendering;
}

function show(view) {
  state.view = view;
  render().then(() => main.focus());
}

function select(name) {
  state.selected = name;
  show('account');
}

async function signIn(name) {
  delete state.failure[name];
  state.progress[name] = { action: 'sign_in', stage: 'starting' };
  render();
  try {
    const id = await call('sign_in', { account: name });
    state.identities[name] = id;
    delete state.pictures[name];
    toast(`Signed in as ${id.name ?? id.email ?? id.subject}`);
  } catch (e) {
    if (!/cancelled/.test(e.message)) state.failure[name] = e;
  } finally {
    delete state.progress[name];
    state.accounts = await call('accounts');
    render();
  }
}

async function signOut(name) {
  state.progress[name] = { action: 'sign_out', stage: 'starting' };
  render();
  try {
    const warnings = await call('sign_out', { account: name });
    toast(warnings.length ? `Signed out. ${warnings[0]}` : `Signed out of ${name}`);
  } catch (e) {
    toast(e.message);
  } finally {
    delete state.progress[name];
    delete state.identities[name];
    delete state.pictures[name];
    state.accounts = await call('accounts');
    render();
  }
}

async function removeAccount(name) {
  const ok = await confirm(`Remove ${name}?`,
    'Lanyard signs this account out on this computer and removes it from the accounts file. Apps will no longer get its tokens.',
    'Remove');
  if (!ok) return;
  try {
    state.accounts = await call('remove_account', { account: name });
    state.selected = state.accounts[0]?.name ?? null;
    toast(`Removed ${name}`);
    render();
  } catch (e) {
    toast(e.message);
  }
}

async function copyToken(name) {
  const ok = await confirm(`Copy ${name}'s access token?`,
    'Anyone you paste it to can act as you until it expires. Prefer letting tools ask Lanyard for it (lanyard token).',
    'Copy token');
  if (!ok) return;
  try {
    const token = await call('access_token', { account: name });
    await writeClipboard(token);
    toast('Access token copied');
  } catch (e) {
    toast(e.message ?? String(e));
  }
}

async function writeClipboard(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = h('textarea', { 'aria-hidden': 'true', style: { position: 'fixed', opacity: '0' } });
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand('copy');
    area.remove();
  }
}

function confirm(title, text, ok) {
  const dialog = document.getElementById('confirm');
  dialog.querySelector('#confirm-title').textContent = title;
  dialog.querySelector('#confirm-text').textContent = text;
  dialog.querySelector('#confirm-ok').textContent = ok;
  dialog.returnValue = '';
  dialog.showModal();
  dialog.querySelector('#confirm-cancel').focus();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
  });
}

// Approval prompts: one at a time, oldest first; each denies itself when its time is up.
// One prompt stands for every request of its app for its account (`waiting`), and the
// window says how many other apps wait behind it.
function showApproval() {
  const dialog = document.getElementById('approval');
  const a = state.approvals[0];
  if (!a) {
    if (dialog.open) dialog.close('closed');
    return;
  }
  dialog.dataset.id = a.id;
  const app = a.app.split('/').pop();
  dialog.querySelector('#approval-title').textContent = `${app} wants your ${a.provider} token`;
  dialog.querySelector('#approval-text').textContent =
    `Allow ${app} to act as you with account ${a.account}?`;
  dialog.querySelector('#approval-facts').replaceChildren(
    h('dt', {}, 'App'), h('dd', { id: 'approval-app' }, a.app),
    h('dt', {}, 'Process'), h('dd', {}, a.pid ? `pid ${a.pid}` : 'unknown'),
    ...(a.through ? [h('dt', {}, 'Through'), h('dd', { id: 'approval-through' }, a.through)] : []),
    h('dt', {}, 'Account'), h('dd', { id: 'approval-account' }, `${a.account} (${a.provider})`),
    ...(a.waiting > 1 ? [h('dt', {}, 'Requests'), h('dd', { id: 'approval-waiting' }, `${a.waiting}, answered together`)] : []));
  showQueue();
  tickApproval();
  if (!dialog.open) dialog.showModal();
  dialog.querySelector('#deny').focus();
}

function showQueue() {
  const queue = document.getElementById('approval-queue');
  const behind = state.approvals.length - 1;
  queue.hidden = behind < 1;
  queue.textContent = behind === 1 ? '1 more app is waiting to be asked' : `${behind} more apps are waiting to be asked`;
}

function tickApproval() {
  const a = state.approvals[0];
  if (!a) return;
  const left = Math.max(0, Math.round(a.deadline - Date.now() / 1000));
  document.getElementById('approval-countdown').textContent = `Denied automatically in ${left} s`;
}

document.getElementById('approval').addEventListener('close', async (event) => {
  const dialog = event.target;
  const id = Number(dialog.dataset.id);
  const decision = dialog.returnValue === 'closed' ? null : (dialog.returnValue || 'deny');
  state.approvals = state.approvals.filter((a) => a.id !== id);
  if (decision) {
    try { await call('answer', { id, decision }); } catch (e) { toast(e.message); }
  }
  showApproval();
});

function handle(event) {
  switch (event.type) {
    case 'accounts':
      state.accounts = event.accounts;
      for (const a of event.accounts) if (a.status !== 'signed_in') delete state.identities[a.name];
      if (!state.selected && event.accounts.length) state.selected = event.accounts[0].name;
      render();
      break;
    case 'progress':
      if (['done', 'failed', 'cancelled'].includes(event.stage)) break; // the call itself resolves
      // "Waiting" right after the browser opened says less than what came before it.
      if (event.stage === 'waiting' && ['browser_opened', 'open_yourself'].includes(state.progress[event.account]?.stage)) break;
      state.progress[event.account] = { action: event.action, stage: event.stage, url: event.url, message: event.message };
      if (state.selected === event.account) render();
      break;
    case 'approval':
      // Asked before this window opened, and told again: shown once.
      if (state.approvals.some((a) => a.id === event.id)) break;
      state.approvals.push({ ...event, deadline: Date.now() / 1000 + event.timeout_secs });
      if (state.approvals.length === 1) showApproval(); else showQueue();
      break;
    case 'approval_waiting': {
      // More requests of the same app for the same account: the same prompt answers them.
      const asked = state.approvals.find((a) => a.id === event.id);
      if (!asked) break;
      asked.waiting = event.waiting;
      if (state.approvals[0] === asked) showApproval();
      break;
    }
    case 'approval_closed':
      // Answered elsewhere or timed out: drop it without answering again.
      if (state.approvals[0]?.id === event.id) {
        state.approvals.shift();
        const dialog = document.getElementById('approval');
        if (dialog.open) { dialog.returnValue = 'closed'; dialog.close('closed'); }
      } else {
        state.approvals = state.approvals.filter((a) => a.id !== event.id);
        showQueue();
      }
      break;
    case 'access':
      if (state.view === 'activity' || state.view === 'apps') render();
      break;
    case 'link_refused':
      toast(event.message);
      break;
    case 'sign_in_needed':
      toast(`${event.account}: sign in again`);
      break;
    default:
      break;
  }
}

// Countdowns: redraw the "valid for" texts and the prompt's deadline once a second.
setInterval(() => {
  for (const el of document.querySelectorAll('[data-expires]')) {
    const text = remaining(Number(el.dataset.expires));
    el.textContent = el.dataset.format === 'short' ? ` · ${text}` : text;
  }
  tickApproval();
}, 1000);

document.getElementById('add-account').addEventListener('click', () => show('add'));
for (const b of document.querySelectorAll('.nav-item')) b.addEventListener('click', () => show(b.dataset.view));

async function start() {
  const info = await call('info');
  if (info.seat) {
    // A kiosk seat: its own screen, nothing else.
    const kiosk = await import('./kiosk.js');
    await kiosk.start(info);
    document.body.dataset.ready = 'true';
    requestAnimationFrame(() => requestAnimationFrame(() => call('painted')));
    return;
  }
  await onEvent(handle);
  // Prompts asked before this window opened (a tool's request opens it).
  if (!info.error) for (const asked of await call('approvals')) handle(asked);
  state.info = info;
  if (!state.info.error) {
    [state.accounts, state.presets] = await Promise.all([call('accounts'), call('presets')]);
  }
  state.selected = state.accounts[0]?.name ?? null;
  await render();
  document.body.dataset.ready = 'true';
  requestAnimationFrame(() => requestAnimationFrame(() => call('painted')));
}

start().catch((e) => main.replaceChildren(errorBox(e)));
