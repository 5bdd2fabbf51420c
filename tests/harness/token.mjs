// Tokens for the tests: an app in auth mode "token" with its secret file, and
// HS256 JWTs minted the way a web app would (node's own crypto, not our C code).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { makeApp } from './rhtmx.mjs';

const b64u = (b) => Buffer.from(b).toString('base64url');

/** An HS256 JWT for claims (header and key overridable for forgeries). */
export function mintToken(secret, claims, { header = { alg: 'HS256', typ: 'JWT' } } = {}) {
  const h = b64u(typeof header === 'string' ? header : JSON.stringify(header));
  const p = b64u(JSON.stringify(claims));
  const s = crypto.createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url');
  return `${h}.${p}.${s}`;
}

/** Seconds since 1970. */
export const now = () => Math.floor(Date.now() / 1000);

/** Claims for sub valid for an hour, plus extra. */
export const claims = (sub, extra = {}) => ({ sub, exp: now() + 3600, ...extra });

/**
 * makeApp in auth mode "token" with a fresh secret in sync.secret (mode 600).
 * Returns the app plus { secret, token(sub, extra) }.
 */
export function makeTokenApp({ auth = {}, config = {}, ...rest } = {}) {
  const app = makeApp({ ...rest, config: { ...config, auth: { mode: 'token', secret_file: 'sync.secret', ...auth } } });
  const secret = crypto.randomBytes(32).toString('base64');
  const file = path.join(app.dir, 'sync.secret');
  fs.writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return { ...app, secret, secretFile: file, token: (sub, extra = {}) => mintToken(secret, claims(sub, extra)) };
}
