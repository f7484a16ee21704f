#!/usr/bin/env node
// A stand-in API server for tests of the tools that use Lanyard's tokens (kubectl, git):
// https on 127.0.0.1 with a private CA (client-go sends exec credentials only over TLS).
//
// Usage: node api.mjs [--tls DIR] --expect AUTHORIZATION --body JSON_OR_TEXT --type CONTENT_TYPE
//                     --challenge WWW_AUTHENTICATE
// Answers 200 with the body when the Authorization header equals --expect, else 401 with
// the challenge. With --expect 'userinfo URL' instead, any Authorization header that URL
// (the provider's userinfo) answers 200 to is accepted (for Basic credentials, their
// password as a Bearer token): for tests in which the token changes, as after a new
// sign-in. GET /_seen lists every Authorization header received. Prints one JSON
// line when listening: {"url": "https://127.0.0.1:PORT"}.

import http from 'node:http';
import https from 'node:https';

import { makeCertificates } from './certs.mjs';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const seen = [];
const valid = async (authorization) => {
  if (!authorization) return false;
  if (!args.expect.startsWith('userinfo ')) return authorization === args.expect;
  // git sends the token as the password of Basic credentials.
  const basic = /^Basic (.+)$/.exec(authorization);
  const bearer = basic
    ? `Bearer ${Buffer.from(basic[1], 'base64').toString().split(':').slice(1).join(':')}`
    : authorization;
  const answer = await fetch(args.expect.slice('userinfo '.length), { headers: { authorization: bearer } });
  return answer.ok;
};
const handler = async (req, res) => {
  if (req.url === '/_seen') {
    res.setHeader('content-type', 'application/json');
    return res.end(JSON.stringify(seen));
  }
  const authorization = req.headers.authorization ?? '';
  seen.push(authorization);
  if (await valid(authorization).catch(() => false)) {
    res.setHeader('content-type', args.type ?? 'application/json');
    return res.end(args.body ?? '');
  }
  res.statusCode = 401;
  res.setHeader('www-authenticate', args.challenge ?? 'Bearer');
  return res.end();
};
// Without --tls, plain http (git sends a credential helper's answer over http too).
const server = args.tls ? https.createServer(makeCertificates(args.tls), handler) : http.createServer(handler);
server.listen(0, '127.0.0.1', () => {
  const scheme = args.tls ? 'https' : 'http';
  process.stdout.write(`${JSON.stringify({ url: `${scheme}://127.0.0.1:${server.address().port}` })}\n`);
});
process.stdout.on('error', () => {});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
