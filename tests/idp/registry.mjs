#!/usr/bin/env node
// A Cargo registry for tests: a sparse index over https on 127.0.0.1 (a private CA),
// `auth-required`, holding one crate served from a `.crate` file. Every request's
// Authorization header (the token, as cargo sends it) is checked at the provider's
// userinfo as a bearer token; anything else gets 401 with cargo's challenge.
//
// Usage: node registry.mjs --tls DIR --userinfo URL --crate PATH --name NAME --vers VERSION
// Prints one JSON line when listening: {"url": "https://127.0.0.1:PORT"}. GET /_seen
// says how many requests were served and how many refused.

import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';

import { makeCertificates } from './certs.mjs';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const crate = fs.readFileSync(args.crate);
const cksum = crypto.createHash('sha256').update(crate).digest('hex');
const name = args.name;
const seen = { served: 0, refused: 0 };
let base = '';

const valid = async (authorization) => {
  if (!authorization) return false;
  const bearer = /^(Bearer|DPoP) /i.test(authorization) ? authorization : `Bearer ${authorization}`;
  const answer = await fetch(args.userinfo, { headers: { authorization: bearer } });
  return answer.ok;
};

const handler = async (req, res) => {
  const path = new URL(req.url, 'https://127.0.0.1').pathname;
  if (path === '/_seen') {
    res.setHeader('content-type', 'application/json');
    return res.end(JSON.stringify(seen));
  }
  if (!(await valid(req.headers.authorization).catch(() => false))) {
    seen.refused += 1;
    res.statusCode = 401;
    res.setHeader('www-authenticate', `Cargo login_url="${base}/login"`);
    return res.end('a token the provider accepts is needed');
  }
  seen.served += 1;
  const index = `/index/${name.slice(0, 2)}/${name.slice(2, 4)}/${name}`;
  if (path === '/index/config.json') {
    res.setHeader('content-type', 'application/json');
    return res.end(JSON.stringify({ dl: `${base}/dl`, api: base, 'auth-required': true }));
  }
  if (path === index) {
    const entry = { name, vers: args.vers, deps: [], cksum, features: {}, yanked: false };
    return res.end(`${JSON.stringify(entry)}\n`);
  }
  if (path === `/dl/${name}/${args.vers}/download`) {
    res.setHeader('content-type', 'application/gzip');
    return res.end(crate);
  }
  res.statusCode = 404;
  return res.end();
};

const server = https.createServer(makeCertificates(args.tls), (req, res) => {
  handler(req, res).catch(() => { res.statusCode = 500; res.end(); });
});
server.listen(0, '127.0.0.1', () => {
  base = `https://127.0.0.1:${server.address().port}`;
  process.stdout.write(`${JSON.stringify({ url: base })}\n`);
});
process.stdout.on('error', () => {});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
