#!/usr/bin/env node
// A browser with no pages to act on, for the hostile-provider tests: Lanyard runs it as
// `$BROWSER URL`; it follows the provider's redirect back to Lanyard's loopback listener.
// With LANYARD_TEST_FORGE=1 it first sends forged callbacks (wrong state, missing state,
// another path) that Lanyard must answer and ignore.
const url = process.argv[2];
const redirect = new URL(url).searchParams.get('redirect_uri');
if (process.env.LANYARD_TEST_FORGE === '1') {
  await fetch(`${redirect}?state=forged-state&code=forged-code`).catch(() => {});
  await fetch(`${redirect}?code=forged-code`).catch(() => {});
  await fetch(new URL('/elsewhere?code=forged-code', redirect)).catch(() => {});
  await fetch(redirect, { method: 'POST', body: new URLSearchParams({ state: 'x', code: 'forged-code' }) }).catch(() => {});
}
await fetch(url, { redirect: 'follow' }).then((r) => r.text()).catch(() => {});
