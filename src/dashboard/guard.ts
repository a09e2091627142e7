import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { CallbackError, ForbiddenError } from '../core/errors.js';
import type { DashboardAuth } from './options.js';

/**
 * The header every action must carry. A page on another origin cannot add a custom header to a
 * cross-site request without a CORS preflight, which the dashboard never answers: so a cookie
 * alone (a logged-in operator visiting a hostile page) can never trigger an action.
 */
export const ACTION_HEADER = 'x-azscale-action';

/**
 * Throws {@link ForbiddenError} unless the dashboard allows actions, the request carries the
 * anti-CSRF header, comes from the same site, and `auth` accepts it.
 */
export async function assertActionAllowed(
  req: IncomingMessage,
  readOnly: boolean,
  auth: DashboardAuth | string | undefined,
): Promise<void> {
  if (readOnly) {
    throw new ForbiddenError('the dashboard is read-only (readOnly: true)', {
      context: { reason: 'read-only' },
    });
  }
  if (auth === undefined) {
    throw new ForbiddenError('actions need the auth option (a function or a bearer token)', {
      context: { reason: 'no-auth-configured' },
    });
  }
  if (req.headers[ACTION_HEADER] !== '1') {
    throw new ForbiddenError(`actions must send the header ${ACTION_HEADER}: 1`, {
      context: { reason: 'csrf' },
    });
  }
  // Browsers send these on every request; a cross-site one is refused even with the header.
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw new ForbiddenError('cross-site actions are refused', { context: { reason: 'csrf' } });
  }
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== 'null' && !sameHost(origin, req.headers.host)) {
    throw new ForbiddenError('cross-origin actions are refused', { context: { reason: 'csrf' } });
  }
  if (!(await authorised(req, auth))) {
    throw new ForbiddenError('this request is not authorised to run dashboard actions', {
      context: { reason: 'unauthorised' },
    });
  }
}

/** Whether the request passes `auth` (false, never a throw, for a missing or wrong token). */
export async function authorised(
  req: IncomingMessage,
  auth: DashboardAuth | string | undefined,
): Promise<boolean> {
  if (auth === undefined) return false;
  if (typeof auth === 'string') {
    const header = req.headers.authorization;
    if (typeof header !== 'string' || !header.startsWith('Bearer ')) return false;
    const given = Buffer.from(header.slice(7));
    const want = Buffer.from(auth);
    return given.length === want.length && timingSafeEqual(given, want);
  }
  let ok: unknown;
  try {
    ok = await auth(req);
  } catch (e) {
    throw new CallbackError('the dashboard auth function threw', { cause: e });
  }
  return ok === true;
}

function sameHost(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}
