/** The part of Hono's `Context` the middlewares use (structural: hono's types are not imported). */
export interface HonoContextLike {
  req: {
    method: string;
    path: string;
    raw: Request;
    header(name: string): string | undefined;
    matchedRoutes?: readonly { path: string; method: string }[];
  };
  res: Response;
  get(key: string): unknown;
  set(key: string, value: unknown): void;
  header(name: string, value: string, options?: { append?: boolean }): void;
  body(data: string | null, status?: number, headers?: Record<string, string>): Response;
}

/** A Hono middleware. */
export type HonoMiddleware = (
  c: HonoContextLike,
  next: () => Promise<void>,
) => Promise<Response | undefined>;
