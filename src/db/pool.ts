import type { Pool, PoolClient, PoolConfig } from 'pg';
import { BackendUnavailableError, TimeoutError } from '../core/errors.js';
import {
  isPgConnectionError,
  isPgPoolWaitTimeout,
  isPgServerError,
} from '../core/backend-errors.js';
import type { DbNodeInfo, DbNodeRole } from './node-info.js';
import { type DbNodeInput, addressOf, isPgPool } from './options.js';
import { loadPg } from './pg-loader.js';

/** What a node's pool needs from the router's options. */
export interface PoolSettings {
  prePing: boolean;
  prePingAfterMs: number;
  poolConfig: PoolConfig;
}

const noop = () => {};

/** When a client was last handed back to its pool (a property: cheaper than a WeakMap lookup). */
const RELEASED_AT = Symbol('azscale.db.releasedAt');
/** The topology generation in which a client was last seen writable (see {@link NodePool.writeGen}). */
const WRITABLE_GEN = Symbol('azscale.db.writableGen');
type TrackedClient = PoolClient & { [RELEASED_AT]?: number; [WRITABLE_GEN]?: number };

const WRITABLE_SQL = 'SELECT pg_is_in_recovery() AS in_recovery';

/**
 * The pool of one PostgreSQL server and how its clients are borrowed and returned: pre-ping of
 * idle clients, the writable check after a topology change, and the errors a failed checkout
 * surfaces as. Health and statements build on it ({@link NodeHealth}, {@link DbNode}).
 */
export class NodePool {
  readonly info: DbNodeInfo;
  readonly pool: Pool;
  /** True when the router created the pool (and so ends it on close). */
  readonly owned: boolean;
  /** Whether the server reported it is in recovery (a standby); `null` before the first check. */
  inRecovery: boolean | null = null;
  /**
   * Set by the router on primary candidates: a client must be seen out of recovery (once per
   * topology generation) before it gets a write.
   */
  guardWrites = false;
  /**
   * Topology generation: bumped by the router when the primary may have changed, so every client
   * (old or new) is checked again before its next write (libpq's
   * `target_session_attrs=read-write`, applied after each topology change).
   */
  writeGen = 0;

  private readonly poolSettings: PoolSettings;
  private onPoolError: ((err: Error) => void) | undefined;

  constructor(name: string, role: DbNodeRole, input: DbNodeInput, settings: PoolSettings) {
    this.poolSettings = settings;
    this.info = Object.freeze({ name, role, ...addressOf(input) });
    if (isPgPool(input)) {
      this.pool = input;
      this.owned = false;
    } else {
      const config: PoolConfig =
        typeof input === 'string'
          ? { ...settings.poolConfig, connectionString: input }
          : { ...settings.poolConfig, ...input };
      this.pool = new (loadPg().Pool)(config);
      this.owned = true;
    }
  }

  /**
   * Listens for the pool's `error` event. An idle client whose server went away makes the pool
   * emit it; with no listener that would crash the process.
   */
  protected listenForPoolErrors(listener: (err: Error) => void): void {
    this.onPoolError = listener;
    this.pool.on('error', listener);
  }

  /**
   * Borrows a client (callback style: one promise per statement, as pg-pool's own `query`).
   * A client idle for `prePingAfter` seconds is checked with an empty statement first and
   * replaced if its connection died; that is not a node failure.
   */
  acquire(
    cb: (err: Error | undefined, client: PoolClient | undefined) => void,
    attempt = 0,
    write = false,
  ): void {
    this.pool.connect((err: Error | undefined, client: PoolClient | undefined) => {
      if (err || !client) {
        cb(this.connectError(err), undefined);
        return;
      }
      const last = (client as TrackedClient)[RELEASED_AT];
      if (last === undefined) {
        // First time we see this client: keep a listener on it for its whole life, so a server
        // that goes away while we hold the client does not raise an unhandled 'error'.
        client.on('error', noop);
        this.ready(client, write, cb);
        return;
      }
      if (
        !this.poolSettings.prePing ||
        attempt >= 2 ||
        performance.now() - last < this.poolSettings.prePingAfterMs
      ) {
        this.ready(client, write, cb);
        return;
      }
      client.query(';', (pingErr: Error | undefined) => {
        if (!pingErr) {
          this.ready(client, write, cb);
          return;
        }
        // Stale: drop it and take another one (or a new connection).
        (client as TrackedClient)[RELEASED_AT] = undefined;
        client.release(pingErr);
        this.acquire(cb, attempt + 1, write);
      });
    });
  }

  /**
   * Hands a client to a writer only once it has been seen out of recovery in this topology
   * generation. Nothing of the caller's has been sent yet when this fails, so the router may
   * safely send the write elsewhere.
   */
  private ready(
    client: PoolClient,
    write: boolean,
    cb: (err: Error | undefined, client: PoolClient | undefined) => void,
  ): void {
    const gen = this.writeGen;
    // Generation 0 (no topology change seen yet) needs no check: a router with several
    // candidates found the writable one before its first write.
    if (!write || !this.guardWrites || ((client as TrackedClient)[WRITABLE_GEN] ?? 0) === gen) {
      cb(undefined, client);
      return;
    }
    client.query<{ in_recovery: boolean }>(WRITABLE_SQL, (err, result) => {
      if (err) {
        this.release(client, err);
        cb(this.unavailable(err, true), undefined);
        return;
      }
      if (result.rows[0]?.in_recovery !== false) {
        this.inRecovery = true;
        this.release(client);
        cb(this.notWritable(), undefined);
        return;
      }
      (client as TrackedClient)[WRITABLE_GEN] = gen;
      cb(undefined, client);
    });
  }

  /** The error of a write that found this node in recovery before anything was sent. */
  notWritable(cause?: unknown): BackendUnavailableError {
    const err = new BackendUnavailableError(
      `PostgreSQL ${this.info.name} (${this.info.host}:${this.info.port}) is in recovery (a standby) and takes no writes`,
      { cause, context: { ...this.info, connect: cause === undefined, readOnly: true } },
    );
    Object.assign(err, { node: this.info });
    return err;
  }

  /**
   * Borrows a client. Connection failures become BackendUnavailableError (with `connect: true`
   * in the context), a full pool past `poolTimeout` becomes TimeoutError.
   */
  checkout(write = false): Promise<PoolClient> {
    return new Promise((resolve, reject) => {
      this.acquire((err, client) => (err || !client ? reject(err) : resolve(client)), 0, write);
    });
  }

  /**
   * Returns a client to the pool. After anything but a plain SQL error the client is destroyed:
   * its connection may be gone or in an unknown state.
   */
  release(client: PoolClient, error?: unknown): void {
    if (error !== undefined && (!isPgServerError(error) || isPgConnectionError(error))) {
      (client as TrackedClient)[RELEASED_AT] = undefined;
      client.release(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    (client as TrackedClient)[RELEASED_AT] = performance.now();
    client.release();
  }

  /** The error a failed `pool.connect()` surfaces as. */
  connectError(e: unknown): Error {
    if (isPgPoolWaitTimeout(e)) {
      return new TimeoutError(
        `no connection to ${this.info.name} (${this.info.host}:${this.info.port}) became free within poolTimeout`,
        { cause: e, context: { ...this.info, option: 'pool.poolTimeout' } },
      );
    }
    return this.unavailable(e, true);
  }

  /** A BackendUnavailableError for this node, with the node attached. */
  unavailable(cause: unknown, connect = false): BackendUnavailableError {
    const reason = cause instanceof Error ? cause.message : String(cause);
    const err = new BackendUnavailableError(
      `PostgreSQL ${this.info.name} (${this.info.host}:${this.info.port}) is unavailable: ${reason}`,
      { cause, context: { ...this.info, connect } },
    );
    Object.assign(err, { node: this.info });
    return err;
  }

  /** Detaches from the pool and ends it when we own it. */
  async close(): Promise<void> {
    if (!this.owned) {
      if (this.onPoolError) this.pool.off('error', this.onPoolError);
      return;
    }
    try {
      await this.pool.end();
    } catch {
      // Ended already (someone called end() on our pool): nothing left to release.
    }
    // Keep the error listener: a client ending late must not crash the process.
  }
}
