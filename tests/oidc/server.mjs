// An Entra-ID-shaped OpenID provider on loopback for the Azure AD sign-in tests, built on the
// certified `oidc-provider` package. Started and stopped by tests/oidc_provider.py.
//
// Issuer https://localhost:<port>/<tenant>/v2.0, the shape of https://login.microsoftonline.com/<tid>/v2.0,
// so msal's authority "https://localhost:<port>/<tenant>" finds <authority>/v2.0/.well-known/openid-configuration.
// /organizations/v2.0 and /common/v2.0 serve Entra's multi-tenant discovery: the issuer is the
// template ".../{tenantid}/v2.0".
//
// env: OIDC_TLS_CERT, OIDC_TLS_KEY (PEM files), OIDC_JWKS (private JWK set: the signing keys),
//      OIDC_USERS (JSON: {login: {password, oid, name, ...claims}}), OIDC_TENANT, OIDC_CLIENT_ID,
//      OIDC_CLIENT_SECRET, OIDC_REDIRECT_URIS (space separated), OIDC_PORT (0 = any free port).
// Prints one JSON line {"port": ..., "issuer": ...} on stdout once it accepts connections.
import fs from 'node:fs';
import https from 'node:https';
import Provider from 'oidc-provider';

const env = process.env;
const tenant = env.OIDC_TENANT;
const clientId = env.OIDC_CLIENT_ID;
const prefix = `/${tenant}/v2.0`;
const multiTenantPrefixes = ['/organizations/v2.0', '/common/v2.0'];
const users = JSON.parse(fs.readFileSync(env.OIDC_USERS, 'utf8'));
const ENTRA_CLAIMS = ['sub', 'oid', 'tid', 'ver', 'preferred_username', 'name', 'email', 'upn', 'roles', 'groups'];
const stats = { discovery: 0, jwks: 0, token: 0, authorize: 0 };

function findUser(login) {
  const key = Object.keys(users).find((k) => k.toLowerCase() === String(login || '').trim().toLowerCase());
  return key === undefined ? undefined : [key, users[key]];
}

function accountClaims(login) {
  const { password, ...claims } = users[login];
  const all = { oid: claims.oid, tid: tenant, ver: '2.0', preferred_username: login, name: login, ...claims };
  return Object.fromEntries(Object.entries(all).filter(([, v]) => v !== null)); // null = claim absent
}

const html = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, loginHint, error) {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in - Test Entra ID</title></head>
<body>
<h1>Sign in</h1>
${error ? `<p id="error" role="alert">${html(error)}</p>` : ''}
<form method="post" action="${prefix}/interaction/${html(uid)}">
  <label>User name <input type="text" name="login" value="${html(loginHint)}" autocomplete="username" required autofocus></label>
  <label>Password <input type="password" name="password" autocomplete="current-password" required></label>
  <button type="submit" name="action" value="login" id="sign-in">Sign in</button>
  <button type="submit" name="action" value="cancel" id="cancel" formnovalidate>Cancel</button>
</form>
</body></html>`;
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return Object.fromEntries(new URLSearchParams(body));
}

// The login page (our own instead of devInteractions: passwords are checked, Cancel denies).
async function interaction(req, res, uid) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  let error;
  if (req.method === 'POST') {
    const form = await readForm(req);
    if (form.action === 'cancel') {
      await provider.interactionFinished(req, res, {
        error: 'access_denied', error_description: 'The user cancelled the sign-in.' },
      { mergeWithLastSubmission: false });
      return;
    }
    const found = findUser(form.login);
    if (found && found[1].password === form.password) {
      await provider.interactionFinished(req, res, { login: { accountId: found[0] } },
        { mergeWithLastSubmission: false });
      return;
    }
    error = 'Your account or password is incorrect.';
  }
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(loginPage(uid, details.params.login_hint, error));
}

// Entra ignores the port of loopback redirect URIs (RFC 8252 7.3), which the tests need:
// the portal under test listens on a free port.
function withoutLoopbackPort(uri) {
  try {
    const url = new URL(uri);
    if (url.protocol !== 'http:' || !['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)) return uri;
    url.port = '';
    return url.href;
  } catch { return uri; }
}

let provider;

function configuration() {
  return {
    clients: [{
      client_id: clientId,
      client_secret: env.OIDC_CLIENT_SECRET,
      redirect_uris: env.OIDC_REDIRECT_URIS.split(/\s+/).filter(Boolean),
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post', // msal sends the secret in the body
    }],
    jwks: JSON.parse(fs.readFileSync(env.OIDC_JWKS, 'utf8')),
    claims: { openid: ENTRA_CLAIMS, profile: ['name', 'preferred_username', 'given_name', 'family_name'],
              email: ['email', 'email_verified'] },
    scopes: ['openid', 'offline_access', 'profile', 'email', `${clientId}/.default`],
    conformIdTokenClaims: false, // profile and email claims in the id_token, as Entra does
    cookies: { keys: ['portal-test-oidc-cookie-key'] },
    features: { devInteractions: { enabled: false }, clientCredentials: { enabled: true } },
    interactions: { url: (ctx, interaction) => `${prefix}/interaction/${interaction.uid}` },
    async findAccount(ctx, id) {
      if (!users[id]) return undefined;
      return { accountId: id, async claims() { return accountClaims(id); } };
    },
    // A first-party app: consent is granted without asking, as an admin-consented Entra app.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope('openid profile email offline_access');
      grant.addOIDCClaims(ENTRA_CLAIMS);
      await grant.save();
      return grant;
    },
    routes: { authorization: '/oauth2/v2.0/authorize', token: '/oauth2/v2.0/token',
              jwks: '/discovery/v2.0/keys', userinfo: '/oidc/userinfo', end_session: '/oauth2/v2.0/logout' },
  };
}

function countRequest(path) {
  if (path.startsWith('/.well-known/openid-configuration')) stats.discovery += 1;
  else if (path.startsWith('/discovery/v2.0/keys')) stats.jwks += 1;
  else if (path.startsWith('/oauth2/v2.0/token')) stats.token += 1;
  else if (path.startsWith('/oauth2/v2.0/authorize')) stats.authorize += 1;
}

function handler(req, res) {
  if (req.url === '/healthz') { res.end('ok'); return; }
  if (req.url === '/_stats') {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify(stats));
    return;
  }
  const multi = multiTenantPrefixes.find((p) => req.url === `${p}/.well-known/openid-configuration`);
  if (!multi && !req.url.startsWith(`${prefix}/`)) { res.statusCode = 404; res.end('not found'); return; }
  const path = req.url.slice((multi || prefix).length);
  const uid = path.match(/^\/interaction\/([\w-]+)$/)?.[1];
  if (uid) {
    interaction(req, res, uid).catch((err) => {
      console.error('interaction', err);
      res.statusCode = 400;
      res.end('This sign-in has expired. Start again from the application.');
    });
    return;
  }
  countRequest(path);
  req.multiTenant = Boolean(multi);
  req.originalUrl = prefix + path; // mounted like express does: oidc-provider reads originalUrl
  req.url = path;
  callback(req, res);
}

let callback;
const server = https.createServer(
  { cert: fs.readFileSync(env.OIDC_TLS_CERT), key: fs.readFileSync(env.OIDC_TLS_KEY) }, handler);
server.listen(Number(env.OIDC_PORT || 0), '127.0.0.1', () => {
  const { port } = server.address();
  const origin = `https://localhost:${port}`;
  provider = new Provider(`${origin}${prefix}`, configuration());
  const redirectUriAllowed = provider.Client.prototype.redirectUriAllowed;
  provider.Client.prototype.redirectUriAllowed = function allowed(value) {
    return redirectUriAllowed.call(this, value)
      || this.redirectUris.some((uri) => withoutLoopbackPort(uri) === withoutLoopbackPort(value));
  };
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.req.multiTenant && ctx.body?.issuer) {
      ctx.body = { ...ctx.body, issuer: `${origin}/{tenantid}/v2.0` };
    }
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  callback = provider.callback();
  console.log(JSON.stringify({ port, issuer: `${origin}${prefix}` }));
});
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => { server.closeAllConnections(); process.exit(0); });
