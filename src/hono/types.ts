/** The part of Hono's `Context` the middlewares use (structural: hono's types are not imported). */
export interface HonoContextLike {
  /** The request (Hono's `HonoRequest`). */
  req: {
    /** HTTP method, upper case. */
    method: string;
    /** The URL's path, without the query. */
    path: string;
    /** The Fetch API `Request`. */
    raw: Request;
    /** A request header's value, by case-insensitive name. */
    header(name: string): string | undefined;
    /** The routes that matched, middlewares included, in order (the last is the handler's). */
    matchedRoutes?: readonly {
      /** The route's template (`/api/task/:id`). */
      path: string;
      /** The route's method, or `ALL` for a middleware. */
      method: string;
    }[];
  };
  /** The answer, once the handler produced one. */
  res: Response;
  /** Reads a context variable. */
  get(key: string): unknown;
  /** Sets a context variable. */
  set(key: string, value: unknown): void;
  /** Sets (or with `append`, adds) an answer header. */
  header(
    name: string,
    value: string,
    options?: {
      /** Add another value instead of replacing. @default false */
      append?: boolean;
    },
  ): void;
  /** Builds an answer from a body, a status and headers. */
  body(data: string | null, status?: number, headers?: Record<string, string>): Response;
}

/** A Hono middleware. */
export type HonoMiddleware = (
  c: HonoContextLike,
  next: () => Promise<void>,
) => Promise<Response | undefined>;
