#!/usr/bin/env node
// A person at a browser, for tests: Lanyard runs this as `$BROWSER URL`, the way it runs a
// user's browser. It opens the URL in Debian's Chromium (headless, driven by playwright-core)
// and acts on the provider's real pages until the browser lands on the app's redirect URI.
//
// Environment (all optional):
//   LANYARD_TEST_BROWSER_ACTION  approve (default) | deny (press "Cancel" on the login page)
//                                | ignore (open the page and do nothing, to test time-outs)
//                                | elsewhere (a browser on another machine, where Lanyard's
//                                  127.0.0.1 is not: the address of the loopback redirect
//                                  it ends on is logged whole as `ended_on`)
//   LANYARD_TEST_LOGIN           the login to type (default alice)
//   LANYARD_TEST_BROWSER_PROFILE a Chromium profile directory kept between runs, so the
//                                provider's session cookie survives (default: a fresh one)
//   LANYARD_TEST_BROWSER_LOG     a file to which one JSON line per run is appended: the pages
//                                seen ("login", "consent", "logout"), the final URL, the
//                                names of the query parameters of the first page that named
//                                a client (`named`: what of the authorization request the
//                                browser carried) and the command line's arguments
//   CHROMIUM                     the browser binary (default /usr/bin/chromium)
//
// Switches a kiosk passes are honoured the way Chromium does: `--user-data-dir=DIR` is the
// profile (created by Lanyard for the seat session, and left in place); others are ignored.
// With LANYARD_TEST_BROWSER_OUTSIDE set, Chromium keeps its profile elsewhere (as when
// unset) and DIR is only logged: a Windows seat's stand-in for Edge owns DIR, and Chromium,
// running on the host, is outside the seat's job that stops what writes there.
//
// A device-flow verification URL (RFC 8628, no redirect URI: the test plays the player's
// phone) is followed through the provider's code confirmation, login and consent pages
// until it says the sign-in succeeded.
//
// A redirect URI with a private-use scheme (dev.lanyard:/callback) is handed to the app the
// way the desktop does it: `gio open URL`, which starts the app registered for the scheme.
//
// Lanyard gives the browser a one-time page on 127.0.0.1, which sends it on to the provider
// (its command line never carries the request's parameters). Where the flow ends is
// therefore recognised by its shape: Lanyard's loopback redirect (`/callback`, or
// `/logged-out` after sign-out) or a private-use scheme (a scheme with a dot in it).

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { chromium } from 'playwright-core';

const argv = process.argv.slice(2);
const url = argv.filter((a) => !a.startsWith('-')).pop();
const userDataDir = argv.find((a) => a.startsWith('--user-data-dir='))?.slice('--user-data-dir='.length);
const action = process.env.LANYARD_TEST_BROWSER_ACTION ?? 'approve';
const login = process.env.LANYARD_TEST_LOGIN ?? 'alice';
const logFile = process.env.LANYARD_TEST_BROWSER_LOG;
const seen = [];
let named = null;

function log(entry) {
  // With the switches it was given, so tests can check the command line a kiosk uses.
  if (logFile) fs.appendFileSync(logFile, `${JSON.stringify({ ...entry, named, argv })}\n`);
}

async function main() {
  if (!url) throw new Error('usage: browser.mjs URL');
  const start = new URL(url);
  const device = start.searchParams.has('user_code') || start.pathname.endsWith('/device');

  const ownDir = process.env.LANYARD_TEST_BROWSER_OUTSIDE ? undefined : userDataDir;
  const fresh = !ownDir && !process.env.LANYARD_TEST_BROWSER_PROFILE;
  const profile = ownDir ?? process.env.LANYARD_TEST_BROWSER_PROFILE
    ?? fs.mkdtempSync(path.join(os.tmpdir(), 'lanyard-chromium-'));
  let page;
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    ignoreHTTPSErrors: true, // the test provider's certificate comes from a CA made for the test
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  try {
    page = context.pages()[0] ?? await context.newPage();
    page.setDefaultTimeout(30_000);
    page.on('request', (request) => {
      if (named || !request.isNavigationRequest()) return;
      const sent = new URL(request.url());
      if (sent.searchParams.has('client_id')) named = [...sent.searchParams.keys()];
    });
    if (device) {
      await page.goto(url, { waitUntil: 'domcontentloaded' });
      await followDevicePages(page);
      log({ action, seen, url: page.url().split('?')[0], profile: userDataDir, device: true });
      return;
    }
    // A private-use scheme never loads in the browser: catch the provider's redirect to it.
    let handOver;
    const handedOver = new Promise((resolve) => { handOver = resolve; });
    let link = null;
    page.on('response', (response) => {
      const location = response.headers().location;
      if (location && isScheme(location) && !link) {
        link = location;
        handOver(location);
      }
      // A browser elsewhere: the redirect to Lanyard's 127.0.0.1 is where it ends (nothing
      // listens for it here either).
      if (action === 'elsewhere' && location && isLoopbackBack(location) && !link) {
        link = location;
        handOver(location);
      }
    });
    await Promise.race([page.goto(url, { waitUntil: 'domcontentloaded' }), handedOver]);
    if (action === 'ignore') {
      log({ action, seen, url: page.url() });
      return;
    }
    // Submits a form and waits for the next page. The provider's pages load a web font
    // that a closed network never delivers, so wait for the DOM, not the `load` event.
    const submit = async (selector) => {
      const before = page.url();
      await Promise.all([
        Promise.race([page.waitForURL((u) => u.href !== before, { waitUntil: 'commit' }), handedOver]),
        page.click(selector),
      ]);
      if (!link) await page.waitForLoadState('domcontentloaded');
    };
    // Act on whatever the provider shows until the browser reaches the app's redirect URI.
    for (let step = 0; step < 10 && !link && !isLoopbackBack(page.url()); step += 1) {
      if (action === 'deny' && await page.locator('input[name="login"]').count()) {
        seen.push('login');
        await submit('a:has-text("Cancel"), button:has-text("Cancel")');
      } else if (await loginOrConsent(page, submit)) {
        // answered
      } else if (await page.locator('button[name="logout"]').count()) {
        seen.push('logout');
        await submit('button[name="logout"]');
      } else {
        // Not there yet (the one-time page is still posting on, a page still loading):
        // wait for the redirect back, or for a page to act on.
        await Promise.race([
          page.waitForURL((u) => isLoopbackBack(u.href), { waitUntil: 'commit' }),
          page.locator('input[name="login"], input[name="prompt"][value="consent"], button[name="logout"]')
            .first().waitFor(),
          handedOver,
        ]);
      }
    }
    if (link && action === 'elsewhere') {
      log({ action, seen, url: link.split('?')[0], ended_on: link });
      return;
    }
    if (link) {
      execFileSync('gio', ['open', link], { stdio: 'inherit' });
      log({ action, seen, url: link.split('?')[0], handed_over: true });
      return;
    }
    await page.waitForLoadState('domcontentloaded');
    const text = await page.locator('body').innerText().catch(() => '');
    log({ action, seen, url: page.url().split('?')[0], text: text.slice(0, 200), profile: userDataDir });
  } catch (error) {
    // Where the browser stood, for the test's failure message.
    error.where = { url: page?.url(), text: (await page?.locator('body').innerText().catch(() => '')) ?? '' };
    throw error;
  } finally {
    // A kiosk seat stops its browser once the sign-out page has come back: the run is
    // over and logged by then, and a browser already gone is no failure of it.
    await context.close().catch(() => {});
    if (fresh) fs.rmSync(profile, { recursive: true, force: true });
  }
}

// Lanyard's loopback redirect URI (or the page after a sign-out): where a flow ends.
function isLoopbackBack(href) {
  return /^http:\/\/127\.0\.0\.1:\d+\/(callback|logged-out)([?#]|$)/.test(href);
}

// A private-use scheme redirect (RFC 8252 section 7.1: reverse domain names, so a dot).
function isScheme(href) {
  return /^[a-z][a-z0-9+-]*\.[a-z0-9+.-]+:/i.test(href);
}

// The provider's login and consent pages, answered as a person would: true if the page
// was one of them.
async function loginOrConsent(page, submit) {
  if (await page.locator('input[name="login"]').count()) {
    seen.push('login');
    await page.fill('input[name="login"]', login);
    await page.fill('input[name="password"]', 'any password');
    await submit('button[type="submit"]');
    return true;
  }
  if (await page.locator('input[name="prompt"][value="consent"]').count()) {
    seen.push('consent');
    await submit('button[type="submit"]');
    return true;
  }
  return false;
}

// The provider's device pages: confirm the code, log in, consent, until it says done.
async function followDevicePages(page) {
  const submit = async (selector) => {
    await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), page.click(selector)]);
  };
  for (let step = 0; step < 10; step += 1) {
    if (/Sign-in Success/.test(await page.locator('body').innerText())) {
      seen.push('success');
      return;
    }
    if (await loginOrConsent(page, submit)) {
      // answered
    } else if (await page.locator('form#op\\.deviceConfirmForm').count()) {
      seen.push('confirm');
      await submit('button[autofocus]');
    } else if (await page.locator('input[name="user_code"]').count()) {
      seen.push('code');
      await submit('button[type="submit"]');
    } else {
      throw new Error('an unexpected device page');
    }
  }
  throw new Error('the device pages never said the sign-in succeeded');
}

main().catch((error) => {
  log({ action, seen, error: String(error).split('\n')[0], profile: userDataDir, ...error.where });
  process.exitCode = 1;
});
