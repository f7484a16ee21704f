#!/usr/bin/env node
// The real OpenID provider for Lanyard's tests and demo: node-oidc-provider, an OpenID
// Certified implementation, configured the way a real deployment would be.
//
// Usage: node server.mjs [--port N] [--tls DIR] [--access-token-ttl S] [--demo]
//
// --port 0 (the default) picks a free port. --tls DIR makes a private CA and a leaf
// certificate for 127.0.0.1 in DIR (ca.pem, for the client's trust store) and serves https.
// When the provider listens it prints one JSON line on stdout: {"issuer": "...", "port": N}.
//
// A test-only route, GET /_test/events, lists the provider events seen so far (grant
// revoked, end session, token consumed …) so tests can check what the provider did without
// reaching into its memory.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';

import Provider from 'oidc-provider';

const args = parseArgs(process.argv.slice(2));
const port = Number(args.port ?? 0);
const accessTokenTtl = Number(args['access-token-ttl'] ?? 3600);

// Users that sign in through the devInteractions login form (any password is accepted).
const USERS = {
  alice: {
    name: 'Alice Example',
    given_name: 'Alice',
    family_name: 'Example',
    preferred_username: 'alice',
    email: 'alice@example.test',
    email_verified: true,
    picture: 'https://example.test/alice.png',
    groups: ['staff', 'developers'],
  },
};

function account(id) {
  const profile = USERS[id] ?? { name: id, email: `${id}@example.test`, email_verified: false, groups: [] };
  return { accountId: id, async claims() { return { sub: id, ...profile }; } };
}

// Every client is a native app (RFC 8252): loopback redirects match on any port.
const nativeClient = (extra) => ({
  application_type: 'native',
  redirect_uris: ['http://127.0.0.1/callback'],
  post_logout_redirect_uris: ['http://127.0.0.1/logged-out'],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  ...extra,
});

const configuration = {
  clients: [
    nativeClient({ client_id: 'lanyard-public', token_endpoint_auth_method: 'none' }),
    nativeClient({ client_id: 'lanyard-basic', client_secret: 'basic-secret-0123456789', token_endpoint_auth_method: 'client_secret_basic' }),
    nativeClient({ client_id: 'lanyard-post', client_secret: 'post-secret-0123456789', token_endpoint_auth_method: 'client_secret_post' }),
  ],
  findAccount: (_ctx, id) => account(id),
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username', 'picture'],
    groups: ['groups'],
  },
  scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  pkce: { required: () => true },
  ttl: { AccessToken: accessTokenTtl, IdToken: 3600, RefreshToken: 14 * 24 * 3600 },
  // A refresh token for every grant that may use one, whether or not the person saw a
  // consent prompt for offline_access (which the provider otherwise insists on).
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  cookies: { keys: ['lanyard-test-idp-cookie-key'] },
};

const tls = args.tls ? makeCertificates(args.tls) : null;
const scheme = tls ? 'https' : 'http';
const events = [];

const server = (tls ? https.createServer(tls) : http.createServer()).listen(port, '127.0.0.1', () => {
  const actual = server.address().port;
  const issuer = `${scheme}://127.0.0.1:${actual}`;
  const provider = new Provider(issuer, configuration);
  provider.proxy = false;
  for (const name of ['grant.revoked', 'end_session.success', 'refresh_token.consumed',
    'refresh_token.destroyed', 'access_token.destroyed', 'authorization.error', 'grant.success']) {
    provider.on(name, () => events.push(name));
  }
  const callback = provider.callback();
  server.on('request', (req, res) => {
    if (req.url === '/_test/events') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(events));
      return;
    }
    callback(req, res);
  });
  process.stdout.write(`${JSON.stringify({ issuer, port: actual })}\n`);
});

// A reader that went away must not take the provider down with it.
process.stdout.on('error', () => {});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 1) {
    const key = argv[i].replace(/^--/, '');
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) out[key] = true;
    else { out[key] = next; i += 1; }
  }
  return out;
}

// A private CA and a leaf for 127.0.0.1, made with openssl; rustls refuses a self-signed
// leaf that is its own CA, so the two are separate.
function makeCertificates(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const p = (name) => path.join(dir, name);
  const run = (...argv) => execFileSync('openssl', argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=Lanyard test CA',
    '-keyout', p('ca.key'), '-out', p('ca.pem'),
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', p('leaf.key'), '-out', p('leaf.csr'));
  fs.writeFileSync(p('leaf.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  run('x509', '-req', '-in', p('leaf.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial',
    '-days', '2', '-extfile', p('leaf.ext'), '-out', p('leaf.pem'));
  return { key: fs.readFileSync(p('leaf.key')), cert: fs.readFileSync(p('leaf.pem')) };
}
