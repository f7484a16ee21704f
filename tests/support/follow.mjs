#!/usr/bin/env node
// A browser with no pages to act on, for the hostile-provider tests: Lanyard runs it as
// `$BROWSER URL`; it follows the provider's redirect back to Lanyard's loopback listener.
// The URL is Lanyard's one-time page, which redirects to the authorization request; with
// LANYARD_TEST_FORGE=1 it first sends forged callbacks (wrong state, missing state, another
// path) to the redirect URI named there, which Lanyard must answer and ignore.
const url = process.argv[2];
const handoff = await fetch(url, { redirect: 'manual' });
const authorize = handoff.headers.get('location');
if (!authorize) throw new Error(`the one-time page sent no redirect: HTTP ${handoff.status}`);
const redirect = new URL(authorize).searchParams.get('redirect_uri');
if (process.env.LANYARD_TEST_FORGE === '1') {
  await fetch(`${redirect}?state=forged-state&code=forged-code`).catch(() => {});
  await fetch(`${redirect}?code=forged-code`).catch(() => {});
  await fetch(new URL('/elsewhere?code=forged-code', redirect)).catch(() => {});
  await fetch(redirect, { method: 'POST', body: new URLSearchParams({ state: 'x', code: 'forged-code' }) }).catch(() => {});
}
await fetch(authorize, { redirect: 'follow' }).then((r) => r.text()).catch(() => {});
