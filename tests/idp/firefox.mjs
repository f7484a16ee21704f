// A player at a kiosk seat's Firefox, for tests. Lanyard starts a Firefox seat browser as
// `firefox -profile PROFILE -private-window URL`; the kiosk test names this script (through
// a wrapper whose name contains "firefox"), and it runs Debian's real Firefox ESR with
// exactly those arguments plus WebDriver BiDi's port, then acts on the provider's pages as
// a person would, in whatever window they open.
//
// A second call while that Firefox runs (the provider's logout page, at the end of the seat
// session) starts Firefox again with the same arguments: Firefox hands the URL to the
// instance running on that profile and exits, and the first call's driver acts on the new
// window. The first call lives as long as its Firefox: Lanyard stops both, with their
// process group, when the seat session ends.
//
// Firefox needs a display (the test starts Xvfb): a headless Firefox cannot hand a URL
// to another instance.
//
// Environment:
//   LANYARD_TEST_BROWSER_LOG  a file to which one JSON line per page flow is appended:
//                             the pages seen ("login", "consent", "logout"), the final URL,
//                             the profile, Firefox's pid, and the names of the cookies in
//                             the profile's cookie jar
//   LANYARD_TEST_LOGIN        the login to type (default alice)
//   FIREFOX                   the browser binary (default /usr/bin/firefox-esr)
//
// Runs with `node --experimental-websocket` (Node 20 has no WebSocket client otherwise).

import { spawn } from 'node:child_process';
import fs from 'node:fs';

const argv = process.argv.slice(2);
const profile = argv[argv.indexOf('-profile') + 1];
const login = process.env.LANYARD_TEST_LOGIN ?? 'alice';
const logFile = process.env.LANYARD_TEST_BROWSER_LOG;

function log(entry) {
  if (logFile) fs.appendFileSync(logFile, `${JSON.stringify(entry)}\n`);
}

// WebDriver BiDi: commands with ids, and events.
class Bidi {
  constructor(url) {
    this.ws = new WebSocket(`${url}/session`);
    this.next = 0;
    this.pending = new Map();
    this.handlers = new Map();
    this.ws.addEventListener('message', (event) => {
      const message = JSON.parse(event.data);
      if (message.id !== undefined && this.pending.has(message.id)) {
        const { resolve, reject } = this.pending.get(message.id);
        this.pending.delete(message.id);
        if (message.type === 'error') reject(new Error(`${message.error}: ${message.message}`));
        else resolve(message.result);
      } else if (message.method) {
        this.handlers.get(message.method)?.(message.params);
      }
    });
  }

  opened() {
    return new Promise((resolve, reject) => {
      this.ws.addEventListener('open', resolve);
      this.ws.addEventListener('error', reject);
    });
  }

  send(method, params = {}) {
    return new Promise((resolve, reject) => {
      this.next += 1;
      this.pending.set(this.next, { resolve, reject });
      this.ws.send(JSON.stringify({ id: this.next, method, params }));
    });
  }

  on(method, handler) {
    this.handlers.set(method, handler);
  }
}

// What a page is, and the person's answer to it, run in the page. A page is answered
// once: the mark stays on its window until the next page replaces it.
const ANSWER = `(() => {
  if (window.__answered) return 'answered';
  const q = (s) => document.querySelector(s);
  let seen = null;
  if (q('input[name="login"]')) {
    q('input[name="login"]').value = ${JSON.stringify(login)};
    q('input[name="password"]').value = 'any password';
    q('button[type="submit"]').click();
    seen = 'login';
  } else if (q('input[name="prompt"][value="consent"]')) {
    q('button[type="submit"]').click();
    seen = 'consent';
  } else if (q('button[name="logout"]')) {
    q('button[name="logout"]').click();
    seen = 'logout';
  }
  if (seen) window.__answered = true;
  return seen ?? 'other';
})()`;

async function main() {
  const firefox = spawn(process.env.FIREFOX ?? '/usr/bin/firefox-esr',
    ['--remote-debugging-port=0', ...argv], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise((resolve) => firefox.on('exit', (code) => resolve(code ?? 1)));
  // A Firefox that starts the remote agent is the seat's first; one that exits first has
  // handed its URL to the running one.
  const listening = new Promise((resolve) => {
    let output = '';
    firefox.stderr.on('data', (chunk) => {
      output += chunk;
      const found = output.match(/WebDriver BiDi listening on (ws:\/\/\S+)/);
      if (found) resolve(found[1]);
    });
  });
  const url = await Promise.race([listening, exited.then(() => null)]);
  if (url === null) {
    process.exitCode = await exited;
    return;
  }

  const bidi = new Bidi(url);
  await bidi.opened();
  await bidi.send('session.new', { capabilities: { alwaysMatch: { acceptInsecureCerts: true } } });
  // Each window's flow, from the URL it was sent to (Lanyard's one-time page, which sends
  // it on to the provider): the pages seen on the way, until it ends at Lanyard's loopback
  // redirect URI (`/callback`, or `/logged-out` after a sign-out).
  const flows = new Map();
  const begin = (context, href) => {
    if (flows.has(context) || !URL.canParse(href) || href.startsWith('about:')) return;
    flows.set(context, { seen: [], done: false });
  };
  const back = (href) => /^http:\/\/127\.0\.0\.1:\d+\/(callback|logged-out)([?#]|$)/.test(href);
  const visit = async (context, href) => {
    const flow = flows.get(context);
    if (!flow || flow.done) return;
    if (back(href)) {
      flow.done = true;
      // The profile's own cookie jar. A normal window keeps the provider's cookies there
      // (and writes them to cookies.sqlite); a private window keeps them in memory, out of
      // the jar, which WebDriver BiDi reads.
      const { cookies } = await bidi.send('storage.getCookies', {});
      const jar = cookies.map((c) => c.name);
      log({ browser: 'firefox', seen: flow.seen, url: href.split('?')[0], profile, pid: firefox.pid, jar });
      return;
    }
    const answer = await bidi.send('script.evaluate', {
      expression: ANSWER, target: { context }, awaitPromise: false,
    }).catch(() => null); // a page already on its way out
    const seen = answer?.result?.value;
    if (['login', 'consent', 'logout'].includes(seen)) flow.seen.push(seen);
  };
  const failed = (error) => log({ browser: 'firefox', error: String(error), profile });
  bidi.on('browsingContext.navigationStarted', ({ context, url: href }) => begin(context, href));
  bidi.on('browsingContext.domContentLoaded', ({ context, url: href }) => visit(context, href).catch(failed));
  await bidi.send('session.subscribe', {
    events: ['browsingContext.navigationStarted', 'browsingContext.domContentLoaded'],
  });
  // The window Firefox opened at start, with the URL Lanyard gave it, may have loaded
  // before the subscription.
  const { contexts } = await bidi.send('browsingContext.getTree', {});
  for (const { context, url: current } of contexts) {
    if (current.startsWith('about:')) continue;
    begin(context, argv[argv.length - 1]);
    const ready = await bidi.send('script.evaluate', {
      expression: 'document.readyState === "loading" ? null : location.href',
      target: { context },
      awaitPromise: false,
    }).catch(() => null);
    const href = ready?.result?.value;
    if (typeof href === 'string') await visit(context, href).catch(failed);
  }
  process.exitCode = await exited;
}

main().catch((error) => {
  log({ browser: 'firefox', error: String(error).split('\n')[0], profile });
  process.exitCode = 1;
});
