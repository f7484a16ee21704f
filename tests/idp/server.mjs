#!/usr/bin/env node
// The real OpenID provider for Lanyard's tests and demo: node-oidc-provider, an OpenID
// Certified implementation, configured the way a real deployment would be.
//
// Usage: node server.mjs [--port N] [--tls DIR] [--access-token-ttl S] [--id-token-ttl S]
//                        [--profile default|hepgg|hackclub|propper|hello|ggleap|ggleap-beta]
//                        [--exact-port N] [--mallory-picture URL] [--access-token-size N]
//                        [--require-par] [--dpop] [--dpop-nonce]
//
// --port 0 (the default) picks a free port. --tls DIR makes a private CA and a leaf
// certificate for 127.0.0.1 in DIR (ca.pem, for the client's trust store) and serves https.
// --profile reproduces one seed provider's documented shape: issuer path, endpoint routes,
// scopes and claims (custom ones too), response types, client authentication, token
// formats. --exact-port is the loopback port ggLeap's client registered exactly.
// --mallory-picture is the `picture` claim of the user mallory: a URL a hostile provider
// might aim an app's picture fetch at. --access-token-size pads every access token to N
// characters: the large tokens that overflow a Credential Manager item (2,560 bytes).
// The default profile takes pushed authorization requests (RFC 9126), as node-oidc-provider
// does out of the box; --require-par makes it take no other. The seed providers' profiles
// do not offer them, as their documentation does not. --dpop turns on DPoP (RFC 9449),
// which node-oidc-provider has on out of the box: tokens then bind to a client's key
// whenever it sends a proof; --dpop-nonce makes the token endpoint require server nonces.
// When the provider listens it prints one JSON line on stdout: {"issuer": "...", "port": N}.
//
// A test-only route, GET /_test/events, lists the provider events seen so far (grant
// revoked, end session, token consumed, center_uuid:… of authorization requests) so tests
// can check what the provider did without reaching into its memory.
//
// Fault switch, for tests of a provider that is down: GET /_test/fault?path=P&mode=M makes
// requests to P (a path under the issuer, such as /token) fail from then on: `hang` (the
// connection is accepted and never answered), `hold` (like hang, until the mode changes:
// then the held requests are answered as the new mode says), `500`, `reset` (the connection is reset) or
// `garbage` (200 with a body that is not JSON); `off` ends it. GET /_test/hits?path=P
// says how many requests reached P so far, faulty or not.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';

import * as jose from 'jose';
import Provider, { errors } from 'oidc-provider';

import { makeCertificates } from './certs.mjs';

const args = parseArgs(process.argv.slice(2));
const port = Number(args.port ?? 0);
const accessTokenTtl = Number(args['access-token-ttl'] ?? 3600);
const profileName = args.profile ?? 'default';
const exactPort = Number(args['exact-port'] ?? 0);
const accessTokenSize = Number(args['access-token-size'] ?? 0);

// Users that sign in through the devInteractions login form (any password is accepted).
const USERS = {
  alice: {
    name: 'Alice Example',
    given_name: 'Alice',
    family_name: 'Example',
    nickname: 'Ali',
    preferred_username: 'alice',
    updated_at: 1790000000,
    email: 'alice@example.test',
    email_verified: true,
    picture: 'https://example.test/alice.png',
    phone_number: '+1 802 555 0100',
    phone_number_verified: true,
    address: {
      street_address: '15 Falls Road', locality: 'Shelburne', region: 'VT', postal_code: '05482', country: 'US',
    },
    birthdate: '2001-04-05',
    groups: ['staff', 'developers'],
    group: 'Gold members',
    roles: ['admin', 'user'],
    slack_id: 'U0123ALICE',
    verification_status: 'verified',
    ysws_eligible: true,
  },
  // Bob's picture is served by the provider itself (GET /_test/avatar.png), so that the
  // desktop app can fetch it on a closed network.
  bob: {
    name: 'Bob Builder',
    email: 'bob@example.test',
    email_verified: true,
    picture: () => `${issuerUrl}/_test/avatar.png`,
    groups: ['builders'],
  },
  mallory: {
    name: 'Mallory',
    email: 'mallory@example.test',
    email_verified: true,
    picture: () => args['mallory-picture'] ?? 'https://example.test/mallory.png',
  },
};
let issuerUrl = '';

// Every profile's clients are native apps (RFC 8252: loopback redirects match on any port)
// unless the provider matches redirect URIs exactly (ggLeap).
// RFC 8693 token exchange, through the provider's grant-type extension API (below).
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

const native = (extra) => ({
  application_type: 'native',
  redirect_uris: ['http://127.0.0.1/callback'],
  post_logout_redirect_uris: ['http://127.0.0.1/logged-out'],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  ...extra,
});

const STANDARD_CLAIMS = {
  openid: ['sub'],
  email: ['email', 'email_verified'],
  profile: ['name', 'given_name', 'family_name', 'preferred_username', 'picture'],
};

const PROFILES = {
  default: {
    clients: [
      // Also a device-flow client (RFC 8628): scan-to-sign-in on a kiosk.
      native({
        client_id: 'lanyard-public',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code', TOKEN_EXCHANGE],
      }),
      native({ client_id: 'lanyard-basic', client_secret: 'basic-secret-0123456789', token_endpoint_auth_method: 'client_secret_basic' }),
      native({ client_id: 'lanyard-post', client_secret: 'post-secret-0123456789', token_endpoint_auth_method: 'client_secret_post' }),
      // The desktop app's private-use scheme (RFC 8252 section 7.1).
      native({
        client_id: 'lanyard-native',
        token_endpoint_auth_method: 'none',
        redirect_uris: ['dev.lanyard:/callback'],
        post_logout_redirect_uris: ['dev.lanyard:/logged-out'],
      }),
      // examples/tauri-signin's own scheme.
      native({
        client_id: 'example-native',
        token_endpoint_auth_method: 'none',
        redirect_uris: ['dev.lanyard.example.signin:/callback'],
        post_logout_redirect_uris: ['dev.lanyard.example.signin:/logged-out'],
      }),
    ],
    claims: { ...STANDARD_CLAIMS, groups: ['groups'] },
    features: {
      revocation: { enabled: true },
      introspection: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      deviceFlow: { enabled: true },
      // RFC 8707: APIs at https://api.NAME.test take JWT access tokens for their audience
      // and the api:* scopes (down-scoping tests).
      resourceIndicators: {
        enabled: true,
        getResourceServerInfo: (_ctx, resource) => {
          if (!/^https:\/\/api\.[a-z]+\.test$/.test(resource)) throw new errors.InvalidTarget();
          return { scope: 'api:read api:write', audience: resource, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
        },
      },
    },
    extraScopes: ['api:read', 'api:write'],
  },
  // Hep.gg: /api/v1/login/oauth/*, RS256 JWT access tokens, groups, a confidential client
  // whose secret is used at the token and revocation endpoints.
  hepgg: {
    routes: {
      authorization: '/api/v1/login/oauth/authorize', token: '/api/v1/login/oauth/token',
      userinfo: '/api/v1/login/oauth/userinfo', revocation: '/api/v1/login/oauth/revoke',
      end_session: '/api/v1/login/oauth/end-session', jwks: '/.well-known/jwks.json',
    },
    clients: [native({ client_id: 'hepgg-app', client_secret: 'hepgg-secret-0123456789', token_endpoint_auth_method: 'client_secret_basic' })],
    claims: { ...STANDARD_CLAIMS, groups: ['groups'] },
    features: {
      revocation: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'https://api.hep.gg',
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'openid profile email groups offline_access',
          audience: 'https://api.hep.gg',
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    // node-oidc-provider's own userinfo refuses access tokens with an audience; Hep.gg's
    // accepts its JWT access tokens, so this profile answers userinfo itself.
    jwtUserinfo: true,
  },
  // Hack Club Auth: /oauth/*, keys at /oauth/discovery/keys, a confidential client,
  // custom scopes and claims in the ID token, opaque `idntk.` access tokens, `ident!` subjects.
  hackclub: {
    routes: { authorization: '/oauth/authorize', token: '/oauth/token', userinfo: '/oauth/userinfo', jwks: '/oauth/discovery/keys' },
    clients: [native({
      client_id: 'hackclub-app', client_secret: 'hackclub-secret-0123456789',
      token_endpoint_auth_method: 'client_secret_post', grant_types: ['authorization_code'],
    })],
    claims: {
      openid: ['sub'],
      profile: ['name', 'given_name', 'family_name', 'nickname', 'updated_at'],
      email: ['email', 'email_verified'],
      phone: ['phone_number', 'phone_number_verified'],
      address: ['address'],
      birthdate: ['birthdate'],
      slack_id: ['slack_id'],
      verification_status: ['verification_status', 'ysws_eligible'],
    },
    subject: (id) => `ident!${id}`,
    conformIdTokenClaims: false,
    accessTokenPrefix: 'idntk.',
    features: { rpInitiatedLogout: { enabled: false } },
    offline: false,
  },
  // Propper: /oauth2/*, roles in userinfo, custom scopes like sign:read, client credentials,
  // revocation but no end-session endpoint.
  propper: {
    routes: { authorization: '/oauth2/authorize', token: '/oauth2/token', userinfo: '/oauth2/userinfo', revocation: '/oauth2/revoke', jwks: '/.well-known/jwks.json' },
    clients: [native({
      client_id: 'propper-app', client_secret: 'propper-secret-0123456789', token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      scope: 'openid profile email offline_access sign:read',
    })],
    claims: { ...STANDARD_CLAIMS, profile: [...STANDARD_CLAIMS.profile, 'roles'], 'sign:read': [] },
    features: { revocation: { enabled: true }, clientCredentials: { enabled: true }, rpInitiatedLogout: { enabled: false } },
  },
  // Hellō: response_type=id_token with form_post or fragment, nonce required, a 5-minute
  // ID token whose `scope` claim is an array, introspection of ID tokens; the code flow too.
  hello: {
    routes: { authorization: '/authorize', introspection: '/oauth/introspect' },
    clients: [{
      client_id: 'hello-app', application_type: 'native', token_endpoint_auth_method: 'none',
      redirect_uris: ['http://127.0.0.1/callback'], response_types: ['id_token', 'code'],
      grant_types: ['implicit', 'authorization_code'],
    }],
    claims: { openid: ['sub', 'scope'], name: ['name'], nickname: ['nickname'], email: ['email', 'email_verified'], picture: ['picture'] },
    responseTypes: ['code', 'id_token'],
    idTokenTtl: 300,
    features: { introspection: { enabled: true }, rpInitiatedLogout: { enabled: false } },
    introspectIdTokens: true,
    offline: false,
  },
  // ggLeap: an issuer with a path, /connect/* routes, center_uuid, the group scope, exact
  // redirect URIs, logout with id_token_hint and post_logout_redirect_uri.
  ggleap: {
    issuerPath: '/production/oidc',
    routes: { authorization: '/connect/authorize', token: '/connect/token', end_session: '/connect/logout', userinfo: '/connect/userinfo' },
    clients: [{
      client_id: 'ggleap-app', client_secret: 'ggleap-secret-0123456789', token_endpoint_auth_method: 'client_secret_basic',
      application_type: 'web',
      redirect_uris: [`http://127.0.0.1:${exactPort}/callback`],
      post_logout_redirect_uris: [`http://127.0.0.1:${exactPort}/logged-out`],
      grant_types: ['authorization_code'], response_types: ['code'],
    }],
    claims: { ...STANDARD_CLAIMS, group: ['group'] },
    extraParams: ['center_uuid'],
    features: { rpInitiatedLogout: { enabled: true } },
    offline: false,
  },
};
PROFILES['ggleap-beta'] = { ...PROFILES.ggleap, issuerPath: '/beta/oidc' };

const profile = PROFILES[profileName];
if (!profile) {
  process.stderr.write(`unknown profile ${profileName}\n`);
  process.exit(2);
}

function account(id) {
  const profileClaims = USERS[id] ?? { name: id, email: `${id}@example.test`, email_verified: false, groups: [] };
  // node-oidc-provider uses the account id as `sub`: the login typed is the id
  // (`ident!alice` for Hack Club), and the profile is found by the plain name.
  const sub = profile.subject ? profile.subject(id) : id;
  return {
    accountId: sub,
    async claims(_use, scope) {
      const claims = Object.fromEntries(Object.entries(profileClaims)
        .map(([k, v]) => [k, typeof v === 'function' ? v() : v]));
      return { sub, ...claims, scope: scope ? scope.split(' ') : undefined };
    },
  };
}

const configuration = {
  clients: profile.clients,
  findAccount: (_ctx, id) => account(id.replace(/^ident!/, '')),
  claims: profile.claims,
  scopes: [...Object.keys(profile.claims), ...(profile.offline === false ? [] : ['offline_access']), ...(profile.extraScopes ?? [])],
  routes: profile.routes ?? {},
  extraParams: profile.extraParams ?? [],
  responseTypes: profile.responseTypes ?? ['code'],
  conformIdTokenClaims: profile.conformIdTokenClaims ?? true,
  features: {
    devInteractions: { enabled: true },
    pushedAuthorizationRequests: {
      enabled: profileName === 'default',
      requirePushedAuthorizationRequests: Boolean(args['require-par']),
    },
    dPoP: {
      enabled: Boolean(args.dpop),
      nonceSecret: args['dpop-nonce'] ? crypto.randomBytes(32) : undefined,
      requireNonce: () => Boolean(args['dpop-nonce']),
    },
    ...profile.features,
  },
  pkce: { required: () => true },
  ttl: {
    AccessToken: accessTokenTtl, ClientCredentials: 600,
    IdToken: Number(args['id-token-ttl'] ?? profile.idTokenTtl ?? 3600), RefreshToken: 14 * 24 * 3600,
  },
  // A refresh token for every grant that may use one, whether or not the person saw a
  // consent prompt for offline_access (which the provider otherwise insists on).
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  cookies: { keys: ['lanyard-test-idp-cookie-key'] },
};

const tls = args.tls ? makeCertificates(args.tls) : null;
const scheme = tls ? 'https' : 'http';
const events = [];
const tokenTimes = [];
const faults = new Map(); // path -> mode
const held = new Map(); // path -> [release]
const hits = new Map(); // path -> count
let callback; // the provider's request handler, once it listens

const server = (tls ? https.createServer(tls) : http.createServer()).listen(port, '127.0.0.1', () => {
  const actual = server.address().port;
  const prefix = profile.issuerPath ?? '';
  const issuer = `${scheme}://127.0.0.1:${actual}${prefix}`;
  issuerUrl = issuer;
  const provider = new Provider(issuer, configuration);
  provider.proxy = false;
  for (const name of ['grant.revoked', 'end_session.success', 'refresh_token.consumed',
    'refresh_token.destroyed', 'access_token.destroyed', 'access_token.saved', 'authorization.error', 'grant.success',
    'pushed_authorization_request.success', 'pushed_authorization_request.error',
    'authorization.success']) {
    provider.on(name, () => events.push(name));
  }
  provider.on('server_error', (_ctx, error) => process.stderr.write(`server_error: ${error?.stack ?? error}\n`));
  // Token exchange (RFC 8693): an access token this client holds, exchanged for one aimed
  // at `audience`, with at most its scopes.
  provider.registerGrantType(TOKEN_EXCHANGE, async (ctx) => {
    const { params, client } = ctx.oidc;
    if (params.subject_token_type !== ACCESS_TOKEN_TYPE) {
      throw new errors.InvalidRequest('subject_token_type must be an access token');
    }
    const subject = await provider.AccessToken.find(params.subject_token);
    if (!subject || subject.isExpired || subject.clientId !== client.clientId) {
      throw new errors.InvalidGrant('subject_token is not a valid access token of this client');
    }
    const granted = new Set(subject.scope.split(' '));
    const asked = (params.scope ?? subject.scope).split(' ').filter(Boolean);
    if (asked.some((scope) => !granted.has(scope))) {
      throw new errors.InvalidScope('a scope beyond the subject token\'s', params.scope);
    }
    const token = new provider.AccessToken({
      accountId: subject.accountId,
      client,
      grantId: subject.grantId,
      gty: 'token_exchange',
      scope: asked.join(' '),
    });
    if (params.audience) token.aud = params.audience;
    const value = await token.save();
    events.push('token_exchange.success');
    ctx.body = {
      access_token: value,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: token.expiration,
      scope: token.scope,
    };
  }, ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'scope', 'resource']);
  if (profile.accessTokenPrefix || accessTokenSize) {
    const generate = provider.AccessToken.prototype.generateTokenId;
    provider.AccessToken.prototype.generateTokenId = function prefixed() {
      return `${profile.accessTokenPrefix ?? ''}${generate.call(this)}`.padEnd(accessTokenSize, 'x');
    };
  }
  const keys = jose.createRemoteJWKSet(new URL(`${issuer}${profile.routes?.jwks ?? '/jwks'}`));
  callback = provider.callback();
  server.on('request', async (req, res) => {
    try {
      if (req.url === '/_test/events' || req.url === `${prefix}/_test/events`) return json(res, 200, events);
      // How long the token endpoint took over each request, in ms: the provider's own share
      // of a refresh, for the benchmark.
      if (req.url === '/_test/token_times' || req.url === `${prefix}/_test/token_times`) return json(res, 200, tokenTimes);
      const test = new URL(req.url, 'http://x');
      if (test.pathname === '/_test/fault' || test.pathname === `${prefix}/_test/fault`) {
        const path = test.searchParams.get('path');
        const mode = test.searchParams.get('mode');
        if (!path || !['hang', 'hold', '500', 'reset', 'garbage', 'off'].includes(mode)) {
          return json(res, 400, { error: 'path and mode (hang, hold, 500, reset, garbage, off) are required' });
        }
        if (mode === 'off') faults.delete(path); else faults.set(path, mode);
        if (mode !== 'hold') {
          const waiting = held.get(path) ?? [];
          held.delete(path);
          for (const release of waiting) release(mode);
        }
        return json(res, 200, { path, mode });
      }
      if (test.pathname === '/_test/hits' || test.pathname === `${prefix}/_test/hits`) {
        return json(res, 200, { hits: hits.get(test.searchParams.get('path')) ?? 0 });
      }
      if (req.url === `${prefix}/_test/avatar.png`) {
        res.writeHead(200, { 'content-type': 'image/png' });
        return res.end(fs.readFileSync(new URL('../fixtures/avatar.png', import.meta.url)));
      }
      if (!req.url.startsWith(prefix)) return json(res, 404, { error: 'not_found' });
      // Mount under the issuer's path the way Express does: originalUrl keeps the prefix.
      req.originalUrl = req.url;
      req.url = req.url.slice(prefix.length) || '/';
      const url = new URL(req.url, issuer);
      hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1);
      if (faulty(url.pathname, faults.get(url.pathname), req, res)) return undefined;
      if (url.pathname === (profile.routes?.token ?? '/token') && req.method === 'POST') {
        const start = process.hrtime.bigint();
        res.on('finish', () => tokenTimes.push(Number(process.hrtime.bigint() - start) / 1e6));
      }
      if (url.searchParams.has('center_uuid')) events.push(`center_uuid:${url.searchParams.get('center_uuid')}`);
      if (profile.jwtUserinfo && url.pathname === profile.routes.userinfo) return await jwtUserinfo(req, res, keys, issuer);
      if (profile.introspectIdTokens && url.pathname === profile.routes.introspection && req.method === 'POST') {
        return await introspectIdToken(req, res, keys, issuer);
      }
      return callback(req, res);
    } catch (error) {
      return json(res, 500, { error: 'server_error', error_description: String(error) });
    }
  });
  process.stdout.write(`${JSON.stringify({ issuer, port: actual })}\n`);
});

// Answers a request to `path` as the fault switch's `mode` says, or returns false to let
// the provider answer it. A held request is answered, when the mode changes, as the new
// mode says.
function faulty(path, mode, req, res) {
  switch (mode) {
    case 'hang': return true;
    case 'hold':
      if (!held.has(path)) held.set(path, []);
      held.get(path).push((next) => faulty(path, next, req, res) || callback(req, res));
      return true;
    case '500':
      json(res, 500, { error: 'server_error', error_description: 'the fault switch is on' });
      return true;
    case 'reset':
      req.socket.resetAndDestroy();
      return true;
    case 'garbage':
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('<html><body>502 Bad Gateway</body></html>');
      return true;
    default: return false;
  }
}

// Hep.gg's userinfo: a bearer JWT access token, verified with the provider's own keys.
async function jwtUserinfo(req, res, keys, issuer) {
  const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
  try {
    const { payload } = await jose.jwtVerify(token, keys, { issuer });
    const scopes = (payload.scope ?? '').split(' ');
    const all = await account(payload.sub).claims('userinfo', payload.scope);
    const allowed = new Set(scopes.flatMap((s) => profile.claims[s] ?? []));
    return json(res, 200, Object.fromEntries(Object.entries(all).filter(([k]) => allowed.has(k))));
  } catch {
    res.setHeader('www-authenticate', 'Bearer error="invalid_token"');
    return json(res, 401, { error: 'invalid_token' });
  }
}

// Hellō's introspection of ID tokens: form fields token, client_id and nonce.
async function introspectIdToken(req, res, keys, issuer) {
  const body = new URLSearchParams(await new Promise((resolve) => {
    let data = '';
    req.on('data', (chunk) => { data += chunk; });
    req.on('end', () => resolve(data));
  }));
  try {
    const { payload } = await jose.jwtVerify(body.get('token'), keys, { issuer, audience: body.get('client_id') });
    if (payload.nonce !== (body.get('nonce') ?? undefined)) throw new Error('nonce');
    events.push('introspection.id_token');
    return json(res, 200, { ...payload, active: true });
  } catch {
    return json(res, 200, { active: false });
  }
}

function json(res, status, value) {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(value));
}

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
