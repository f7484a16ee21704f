// The screens of the main panel. Each takes the state and the actions and returns an
// element; main.js puts it in place. Nothing here calls the backend by itself.

import { h, remaining, when, errorBox } from './dom.js';

/** The "Sign in with …" button, in the provider's colours. */
export function providerButton(account, onClick) {
  const b = account.button;
  return h('button', {
    type: 'button', id: 'sign-in', class: 'provider-button', 'data-account': account.name, 'data-preset': account.preset,
    style: { '--brand-bg': b.background, '--brand-fg': b.foreground },
    onclick: onClick,
  }, b.mark ? h('span', { class: 'mark', 'aria-hidden': 'true' }, b.mark) : null, b.label);
}

export function accountItem(account, selected, onSelect) {
  const b = account.button;
  const status = {
    signed_in: `Signed in as ${account.person ?? '…'}`,
    sign_in_needed: 'Sign-in needed',
    signed_out: 'Signed out',
  }[account.status];
  const expiry = account.status === 'signed_in' && account.expires_at
    ? h('span', { 'data-expires': account.expires_at, 'data-format': 'short' }, ` · ${remaining(account.expires_at)}`)
    : null;
  return h('li', {},
    h('button', {
      type: 'button', class: 'account-item', 'data-account': account.name,
      'aria-current': selected ? 'true' : 'false', onclick: onSelect,
    },
    h('span', { class: 'logo', style: { background: b.background, color: b.foreground }, 'aria-hidden': 'true' },
      b.mark ?? account.provider.slice(0, 1).toUpperCase()),
    h('span', {},
      h('span', { class: 'title' }, account.name, h('span', { class: 'muted' }, ` · ${account.provider}`)),
      h('span', { class: 'status' }, h('span', { class: `dot ${account.status}`, 'aria-hidden': 'true' }),
        h('span', { class: 'status-text' }, status), expiry))));
}

export function signedOut(account, actions) {
  const needed = account.status === 'sign_in_needed';
  return h('section', { class: 'card', 'aria-labelledby': 'account-title', 'data-screen': 'signed-out' },
    h('h1', { id: 'account-title' }, account.name),
    h('p', { class: 'muted' }, `${account.provider} · ${account.issuer}`),
    needed
      ? h('div', { class: 'error', role: 'status' }, 'Your sign-in has ended. ', account.reason ?? '')
      : h('p', {}, 'Not signed in. Sign in in your browser; Lanyard keeps the sign-in in your keychain and shares it only with the apps you allow.'),
    h('div', { class: 'actions' }, providerButton(account, actions.signIn)),
    h('div', { class: 'actions' },
      h('button', { type: 'button', id: 'remove-account', class: 'danger', onclick: actions.remove }, 'Remove account')));
}

export function progress(account, p, actions) {
  const verb = p.action === 'sign_out' ? 'Signing out of' : 'Signing in to';
  const text = {
    browser_opened: 'Your browser is open. Finish there; this window comes back when you are done.',
    open_yourself: 'Open this page in your browser to continue:',
    waiting: 'Waiting for you in the browser…',
    finishing: 'Checking the answer from the provider…',
  }[p.stage] ?? 'Starting…';
  return h('section', { class: 'card', 'data-screen': 'progress', 'aria-busy': 'true' },
    h('div', { class: 'progress' },
      h('div', { class: 'spinner', role: 'progressbar', 'aria-label': 'In progress' }),
      h('div', {},
        h('h1', {}, `${verb} ${account.name}`),
        h('p', { id: 'progress-text' }, text),
        p.url ? h('p', {}, h('code', { class: 'path' }, p.url)) : null,
        p.message ? h('p', { class: 'muted' }, p.message) : null)),
    h('div', { class: 'actions' },
      // Enabled once the app reports the sign-in under way: a Cancel before that would
      // find nothing to cancel, and the sign-in would go on.
      h('button', { type: 'button', id: 'cancel-sign-in', onclick: actions.cancel, disabled: p.stage === 'starting' }, 'Cancel')));
}

export function identity(account, id, picture, actions) {
  const avatar = h('div', { class: 'avatar', 'aria-hidden': 'true' },
    picture ? h('img', { src: picture, alt: '' }) : id.initials);
  const expiry = id.expires_at
    ? h('div', { class: 'expiry', id: 'expiry' },
      'Token valid for ', h('strong', { 'data-expires': id.expires_at }, remaining(id.expires_at)),
      id.refreshable ? h('span', { class: 'muted' }, '· renews itself') : null)
    : null;
  const claims = id.claims.length
    ? h('dl', { class: 'facts', id: 'claims', 'aria-label': `${account.provider} details` },
      id.claims.map(([k, v]) => [h('dt', {}, k), h('dd', { 'data-claim': k }, v)]))
    : null;
  return h('section', { class: 'card', 'aria-labelledby': 'who', 'data-screen': 'identity' },
    h('div', { class: 'identity-head' }, avatar,
      h('div', {},
        h('h1', { id: 'who', class: 'name' }, id.name ?? id.email ?? id.subject),
        id.email ? h('p', { class: 'email', id: 'email' }, id.email,
          id.email_verified ? h('span', { class: 'verified' }, '✓ verified') : null) : null,
        h('p', { class: 'muted' }, `${id.provider} · account ${account.name}`),
        expiry)),
    id.groups.length
      ? h('ul', { class: 'chips', id: 'groups', 'aria-label': 'Groups and roles' }, id.groups.map((g) => h('li', {}, g)))
      : null,
    claims,
    h('details', {},
      h('summary', {}, 'Technical details'),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Issuer'), h('dd', { id: 'issuer' }, id.issuer),
        h('dt', {}, 'Subject'), h('dd', { id: 'subject' }, id.subject),
        h('dt', {}, 'Scopes'), h('dd', { id: 'scopes' }, id.scopes.join(' ')),
        h('dt', {}, 'Signed in'), h('dd', {}, when(id.signed_in_at)),
        h('dt', {}, 'Kept in'), h('dd', {}, id.store === 'keychain' ? 'your keychain' : 'memory only (gone when Lanyard quits)'))),
    h('div', { class: 'actions' },
      h('button', { type: 'button', id: 'copy-token', onclick: actions.copy }, 'Copy access token'),
      h('button', { type: 'button', id: 'sign-out', class: 'danger', onclick: actions.signOut }, 'Sign out'),
      h('button', { type: 'button', id: 'remove-account', class: 'danger', onclick: actions.remove }, 'Remove account')));
}

export function empty(actions) {
  return h('section', { class: 'empty', 'data-screen': 'empty' },
    h('img', { src: 'icon.png', alt: '', width: 96, height: 96 }),
    h('h1', {}, 'Welcome to Lanyard'),
    h('p', { class: 'muted' }, 'Sign in once; your tools get their tokens from here, with your say-so.'),
    h('div', { class: 'actions', style: { justifyContent: 'center' } },
      h('button', { type: 'button', class: 'primary', onclick: actions.add }, 'Add an account')));
}

export function apps(rules, actions) {
  const label = { allowed: 'Always', allowed_once: 'Once', denied: 'Denied' };
  return h('section', { class: 'card', 'data-screen': 'apps', 'aria-labelledby': 'apps-title' },
    h('h1', { id: 'apps-title' }, 'Allowed apps'),
    h('p', { class: 'muted' }, 'Apps that asked for a token and what you answered. Revoke to be asked again.'),
    rules.length === 0
      ? h('p', { id: 'no-apps' }, 'No app has asked yet.')
      : h('table', { id: 'apps-table' },
        h('thead', {}, h('tr', {}, h('th', {}, 'App'), h('th', {}, 'Account'), h('th', {}, 'Answer'), h('th', {}, h('span', { class: 'skip' }, 'Actions')))),
        h('tbody', {}, rules.map((r) => h('tr', { 'data-app': r.app, 'data-account': r.account },
          h('td', { class: 'path' }, r.app),
          h('td', {}, r.account),
          h('td', {}, h('span', { class: `badge ${r.decision}` }, label[r.decision])),
          h('td', {}, h('button', {
            type: 'button', class: 'revoke', 'aria-label': `Revoke ${r.app} for ${r.account}`,
            onclick: () => actions.revoke(r),
          }, 'Revoke')))))));
}

export function activity(entries) {
  const label = {
    allowed: 'Got a token', allowed_once: 'Got a token (once)', denied: 'Refused', approval_required: 'Not allowed yet',
    signed_in: 'Signed in', signed_out: 'Signed out',
  };
  return h('section', { class: 'card', 'data-screen': 'activity', 'aria-labelledby': 'activity-title' },
    h('h1', { id: 'activity-title' }, 'Activity'),
    h('p', { class: 'muted' }, 'Which app got which account\'s token, and when. Tokens themselves are never recorded.'),
    entries.length === 0
      ? h('p', {}, 'Nothing yet.')
      : h('table', { id: 'activity-table' },
        h('thead', {}, h('tr', {}, h('th', {}, 'When'), h('th', {}, 'App'), h('th', {}, 'Account'), h('th', {}, 'What happened'))),
        h('tbody', {}, entries.map((e) => h('tr', {},
          h('td', {}, when(e.time)),
          h('td', { class: 'path' }, e.app),
          h('td', {}, e.account),
          h('td', {}, h('span', { class: `badge ${e.decision}` }, label[e.decision] ?? e.decision)))))));
}

/** The "Add account" form: a preset, or any provider by its issuer, checked live. */
export function addAccount(presets, actions) {
  const choice = (value, name, swatch) => h('label', { class: 'preset-choice' },
    h('input', { type: 'radio', name: 'preset', value, onchange: update }),
    h('span', { class: 'swatch', style: { background: swatch }, 'aria-hidden': 'true' }), name);
  const field = (id, label, help, attrs = {}) => h('label', { for: id, id: `${id}-label` }, label,
    help ? h('span', { class: 'help' }, help) : null,
    h('input', { id, name: id, type: 'text', autocomplete: 'off', spellcheck: 'false', ...attrs }));
  const check = h('p', { class: 'check', id: 'issuer-check', 'aria-live': 'polite' });
  const error = h('div', { id: 'add-error' });
  const form = h('form', { class: 'stack', id: 'add-form', onsubmit: submit },
    h('fieldset', { style: { border: 0, padding: 0, margin: 0 } },
      h('legend', { class: 'section-title' }, 'Provider'),
      h('div', { class: 'presets' },
        presets.map((p) => choice(p.id, p.name, p.branding.background)),
        choice('', 'Other provider', '#2f3640'))),
    field('name', 'Account name', 'A short name for the command line: lanyard token NAME', { required: true, pattern: '[A-Za-z0-9._-]{1,64}' }),
    field('issuer', 'Issuer', 'The provider\'s URL, e.g. https://id.example.com', { type: 'url' }),
    check,
    field('client_id', 'Client ID', 'The id the provider gave your app', { required: true }),
    field('client_secret', 'Client secret', 'Kept in your keychain, never in a file', { type: 'password' }),
    field('center', 'Center UUID', 'The center to sign in to (ggLeap)'),
    error,
    h('div', { class: 'actions' },
      h('button', { type: 'button', onclick: actions.cancel }, 'Cancel'),
      h('button', { type: 'submit', class: 'primary', id: 'add-submit' }, 'Add account')));

  function selected() {
    const id = form.querySelector('input[name="preset"]:checked')?.value;
    return presets.find((p) => p.id === id);
  }
  function update() {
    const p = selected();
    const issuer = form.querySelector('#issuer');
    issuer.placeholder = p ? p.issuer : 'https://id.example.com';
    form.querySelector('#issuer-label .help').textContent = p
      ? `Leave empty for ${p.issuer}` : 'The provider\'s URL, e.g. https://id.example.com';
    form.querySelector('#client_secret-label').hidden = p ? !p.needs_secret : false;
    form.querySelector('#center-label').hidden = !(p && p.center_param);
    const name = form.querySelector('#name');
    if (p && !name.value) name.value = p.id;
    checkIssuer();
  }
  let checking = 0;
  async function checkIssuer() {
    const p = selected();
    const issuer = form.querySelector('#issuer').value.trim() || p?.issuer || '';
    const n = ++checking;
    if (!issuer) { check.textContent = ''; return; }
    check.className = 'check';
    check.textContent = `Checking ${issuer}…`;
    try {
      const found = await actions.check(issuer);
      if (n !== checking) return;
      check.className = 'check ok';
      check.textContent = `✓ Found ${found.issuer}${found.end_session ? '' : ' (no sign-out page)'}`;
    } catch (e) {
      if (n !== checking) return;
      check.className = 'check bad';
      check.textContent = `✗ ${e.message}${e.hint ? ` — ${e.hint}` : ''}`;
    }
  }
  form.querySelector('#issuer').addEventListener('change', checkIssuer);
  async function submit(event) {
    event.preventDefault();
    error.replaceChildren();
    const data = Object.fromEntries(new FormData(form));
    const button = form.querySelector('#add-submit');
    button.disabled = true;
    button.textContent = 'Checking the provider…';
    try {
      await actions.add({
        name: data.name, preset: data.preset || null, issuer: data.issuer || null,
        client_id: data.client_id, client_secret: data.client_secret || null, center: data.center || null,
      });
    } catch (e) {
      error.replaceChildren(errorBox(e));
    } finally {
      button.disabled = false;
      button.textContent = 'Add account';
    }
  }
  return h('section', { class: 'card', 'data-screen': 'add', 'aria-labelledby': 'add-title' },
    h('h1', { id: 'add-title' }, 'Add an account'),
    h('p', { class: 'muted' }, 'Pick a provider Lanyard knows, or any OpenID Connect provider by its issuer.'),
    form);
}
