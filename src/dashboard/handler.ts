import type { IncomingMessage, ServerResponse } from 'node:http';
import { NotFoundError, ValidationError } from '../core/errors.js';
import { serveAsset, serveIndex } from './assets.js';
import { assertActionAllowed, authorised } from './guard.js';
import { readJsonBody, securityHeaders, sendError, sendJson } from './http.js';
import type { ResolvedOptions } from './options.js';
import { getTask, listTasks, parseListQuery, runQueueAction } from './queue-api.js';
import type { FleetState } from './state.js';

/** Longest request URL accepted. */
const MAX_URL = 2048;

type Route = (req: IncomingMessage, res: ServerResponse, query: URLSearchParams) => Promise<void>;

function decode(segment: string, what: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ValidationError(`${what} is not valid URL encoding`, { option: what });
  }
}

/** Routes a request under the base path (`path` is relative to it: `''`, `/`, `/api/...`). */
export function createRouter(o: ResolvedOptions, state: FleetState) {
  const action = async (
    req: IncomingMessage,
    res: ServerResponse,
    run: (body: Record<string, unknown>) => Promise<Record<string, unknown>>,
  ) => {
    await assertActionAllowed(req, o.readOnly, o.auth);
    const body = await readJsonBody(req);
    sendJson(res, 200, { ok: true, ...(await run(body)) });
  };

  const queueOf = (name: string) => {
    const q = state.queues.get(decode(name, 'queue'));
    if (!q) throw new NotFoundError('no such queue on this dashboard');
    return q;
  };

  const routes: [RegExp, Record<string, (m: RegExpMatchArray) => Route>][] = [
    [
      /^\/api\/config$/,
      {
        GET: () => async (req, res) => {
          sendJson(res, 200, {
            title: o.title,
            readOnly: o.readOnly,
            actions: !o.readOnly && o.auth !== undefined,
            tokenAuth: typeof o.auth === 'string',
            authorised: !o.readOnly && (await authorised(req, o.auth)),
            refreshInterval: o.refreshMs / 1000,
            queues: [...state.queues.keys()],
          });
        },
      },
    ],
    [
      /^\/api\/overview$/,
      { GET: () => async (_q, res) => sendJson(res, 200, await state.getOverview()) },
    ],
    [
      /^\/api\/breakers$/,
      { GET: () => async (_q, res) => sendJson(res, 200, { breakers: state.breakerViews() }) },
    ],
    [
      /^\/api\/breakers\/([^/]+)\/reset$/,
      {
        POST: (m) => async (req, res) => {
          const name = decode(m[1]!, 'breaker');
          const b = state.breakers().find((e) => e.name === name)?.value;
          if (!b) throw new NotFoundError('no such breaker on this dashboard');
          await action(req, res, async () => {
            await b.reset();
            return { state: b.state };
          });
          state.touched();
        },
      },
    ],
    [
      /^\/api\/limits$/,
      {
        GET: () => async (_q, res) => {
          const [limiters, rateLimiters] = await Promise.all([
            state.limiterViews(),
            state.rateViews(),
          ]);
          sendJson(res, 200, { limiters, rateLimiters });
        },
      },
    ],
    [
      /^\/api\/queues\/([^/]+)$/,
      { GET: (m) => async (_q, res) => sendJson(res, 200, await queueOf(m[1]!).view()) },
    ],
    [
      /^\/api\/queues\/([^/]+)\/tasks$/,
      {
        GET: (m) => async (_q, res, query) => {
          const q = queueOf(m[1]!);
          sendJson(res, 200, await listTasks(q.queue, parseListQuery(query)));
        },
      },
    ],
    [
      /^\/api\/queues\/([^/]+)\/tasks\/([^/]+)$/,
      {
        GET: (m) => async (_q, res) =>
          sendJson(res, 200, await getTask(queueOf(m[1]!).queue, decode(m[2]!, 'task id'))),
      },
    ],
    [
      /^\/api\/queues\/([^/]+)\/tasks\/([^/]+)\/(retry|cancel)$/,
      {
        POST: (m) => async (req, res) => {
          const q = queueOf(m[1]!);
          const id = decode(m[2]!, 'task id');
          await action(req, res, (body) => runQueueAction(q.queue, m[3]!, id, body));
          state.touched(q);
        },
      },
    ],
    [
      /^\/api\/queues\/([^/]+)\/(redrive|pause|resume|clean)$/,
      {
        POST: (m) => async (req, res) => {
          const q = queueOf(m[1]!);
          await action(req, res, (body) => runQueueAction(q.queue, m[2]!, undefined, body));
          state.touched(q);
        },
      },
    ],
  ];

  return async (req: IncomingMessage, res: ServerResponse, path: string, search: string) => {
    try {
      if ((req.url ?? '').length > MAX_URL) {
        throw new ValidationError(`the URL is longer than ${MAX_URL} characters`, {
          option: 'url',
        });
      }
      const method = req.method ?? 'GET';
      if (path === '/' || path === '/index.html') {
        if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed(res, 'GET');
        return serveIndex(req, res);
      }
      const asset = /^\/assets\/([^/]+)$/.exec(path);
      if (asset) {
        if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed(res, 'GET');
        return serveAsset(req, res, asset[1]!);
      }
      for (const [re, methods] of routes) {
        const m = re.exec(path);
        if (!m) continue;
        const make = Object.hasOwn(methods, method) ? methods[method] : undefined;
        if (!make) return methodNotAllowed(res, Object.keys(methods).join(', '));
        await make(m)(req, res, new URLSearchParams(search));
        return;
      }
      throw new NotFoundError('no such dashboard page or API route');
    } catch (e) {
      sendError(res, e);
    }
  };
}

function methodNotAllowed(res: ServerResponse, allow: string): void {
  res.setHeader('Allow', allow);
  securityHeaders(res);
  sendJson(res, 405, {
    error: { code: 'AZS_VALIDATION', message: `method not allowed (allowed: ${allow})` },
  });
}
