/**
 * A small TCP proxy between a Redis client and a Redis server that injects the faults a
 * production network produces: a reply that never arrives (the command ran, then the
 * connection died), every connection cut at once, refused connections, and added latency.
 *
 * The "lost reply" fault is the one that matters for exactly-once rules: ioredis resends every
 * command whose reply it has not seen when it reconnects (`autoResendUnfulfilledCommands`), so a
 * non-idempotent script whose reply is dropped runs twice unless it guards itself. The proxy
 * forwards the matching command, withholds everything the client sends after it (those commands
 * never reach the server, so they run exactly once after the resend), swallows the command's
 * reply and then cuts the connection.
 *
 * To find that reply the proxy parses RESP in both directions: command boundaries on the way in,
 * reply boundaries on the way out, paired in order. A connection that enters pub/sub mode has no
 * such pairing; it is forwarded raw and never chosen for a drop.
 *
 * Standalone: point the client at `proxy.url`.
 * Cluster: {@link startClusterFaultProxy} starts one proxy per node and returns `natMap` and
 * `startupNodes`. Give both to `new Cluster(startupNodes, { natMap })`: the seed connection goes
 * through a proxy, and every node address the cluster announces (CLUSTER SLOTS, MOVED, ASK) is
 * mapped by ioredis onto that node's proxy, so no command bypasses the faults.
 */
import { createServer, type Server, Socket } from 'node:net';

/** One command as the proxy saw it on its way to the server. */
export interface ProxiedCommand {
  /** Upper-cased command name, e.g. `EVALSHA`. */
  name: string;
  /** Arguments after the name, as sent. */
  args: Buffer[];
  /** The raw RESP bytes of the command. */
  bytes: Buffer;
}

/** Which command's reply to drop: a name (`'EVALSHA'`), several names, or a predicate. */
export type CommandMatch = string | readonly string[] | ((cmd: ProxiedCommand) => boolean);

/** Options of {@link startFaultProxy}. */
export interface FaultProxyOptions {
  /** The Redis server to forward to. */
  target: { host: string; port: number };
  /** Port to listen on (default: a free one). Always binds 127.0.0.1. */
  port?: number;
}

/** A running fault proxy. */
export interface FaultProxy {
  /** `redis://127.0.0.1:<port>`: what a standalone client connects to. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** The server behind the proxy. */
  readonly target: { host: string; port: number };
  /** Client connections open right now. */
  readonly connections: number;
  /** Commands forwarded to the server so far (all connections). */
  readonly commands: number;
  /** Replies dropped so far. */
  readonly dropped: number;
  /**
   * Arms a one-shot fault: the next command matching `match` (default: any command that is not
   * part of the connection handshake) is forwarded, its reply is swallowed and its connection
   * cut. Calls queue up: two calls drop two replies. The promise resolves with the command once
   * its reply was dropped, or with `undefined` when the proxy closes first; it never rejects, so
   * a test may ignore it.
   */
  dropNextReply(match?: CommandMatch): Promise<ProxiedCommand | undefined>;
  /** Destroys every open connection (client and server side). New connections are accepted. */
  cutAll(): void;
  /**
   * While `true`, every open connection is cut and new ones are refused: closed as soon as they
   * are accepted (`mode: 'refuse'`, the default: a stopped server), or accepted and held open
   * without a byte forwarded (`mode: 'hang'`: a network partition or a hung server, where only
   * the client's own timeouts end the attempt). Held sockets count in `connections` and are cut
   * when the fault is lifted.
   */
  setDown(down: boolean, mode?: 'refuse' | 'hang'): void;
  /** Client connections accepted so far (all modes): how often clients (re)connected. */
  readonly accepted: number;
  /** Delays every command on its way to the server by `ms` (order is kept). `0` turns it off. */
  setLatencyMs(ms: number): void;
  /** Stops listening and cuts every connection. */
  close(): Promise<void>;
}

// Commands ioredis sends on its own while connecting; the default matcher skips them so that
// `dropNextReply()` hits the caller's command, not the ready check.
const HANDSHAKE = new Set([
  'AUTH',
  'HELLO',
  'SELECT',
  'CLIENT',
  'INFO',
  'READONLY',
  'CLUSTER',
  'PING',
]);
const PUBSUB = new Set(['SUBSCRIBE', 'PSUBSCRIBE', 'SSUBSCRIBE', 'MONITOR']);

interface Arm {
  matches(cmd: ProxiedCommand): boolean;
  resolve(cmd: ProxiedCommand | undefined): void;
}

/** A queue of armed drops; shared by every proxy of a cluster so "next" means next anywhere. */
class Arms {
  private readonly list: Arm[] = [];

  add(match: CommandMatch | undefined): Promise<ProxiedCommand | undefined> {
    return new Promise((resolve) => {
      this.list.push({ matches: toPredicate(match), resolve });
    });
  }

  /** Removes and returns the first arm that matches `cmd`. */
  take(cmd: ProxiedCommand): Arm | undefined {
    const i = this.list.findIndex((a) => a.matches(cmd));
    if (i < 0) return undefined;
    return this.list.splice(i, 1)[0];
  }

  cancelAll(): void {
    for (const a of this.list.splice(0)) a.resolve(undefined);
  }
}

function toPredicate(match: CommandMatch | undefined): (cmd: ProxiedCommand) => boolean {
  if (match === undefined) return (cmd) => !HANDSHAKE.has(cmd.name);
  if (typeof match === 'function') return match;
  const names = new Set((typeof match === 'string' ? [match] : match).map((n) => n.toUpperCase()));
  return (cmd) => names.has(cmd.name);
}

// ---------------------------------------------------------------------------------------------
// RESP framing. Each function returns the offset just past one complete value starting at
// `start`, or -1 when the buffer does not hold all of it yet.

function lineEnd(buf: Buffer, start: number): number {
  const i = buf.indexOf('\r\n', start);
  return i < 0 ? -1 : i;
}

/** End of one RESP2/RESP3 value. */
function valueEnd(buf: Buffer, start: number): number {
  if (start >= buf.length) return -1;
  const type = buf[start];
  const eol = lineEnd(buf, start + 1);
  if (eol < 0) return -1;
  const header = buf.toString('latin1', start + 1, eol);
  const after = eol + 2;
  switch (type) {
    case 0x2b: // + simple string
    case 0x2d: // - error
    case 0x3a: // : integer
    case 0x5f: // _ null
    case 0x23: // # boolean
    case 0x2c: // , double
    case 0x28: // ( big number
      return after;
    case 0x24: // $ bulk string
    case 0x21: // ! bulk error
    case 0x3d: {
      // = verbatim string
      const len = Number(header);
      if (len < 0) return after;
      const end = after + len + 2;
      return end <= buf.length ? end : -1;
    }
    case 0x2a: // * array
    case 0x7e: // ~ set
    case 0x3e: // > push
    case 0x25: // % map
    case 0x7c: {
      // | attribute (precedes the value it annotates)
      let n = Number(header);
      if (n < 0) return after;
      if (type === 0x25 || type === 0x7c) n *= 2;
      let at = after;
      for (let i = 0; i < n; i++) {
        at = valueEnd(buf, at);
        if (at < 0) return -1;
      }
      return type === 0x7c ? valueEnd(buf, at) : at;
    }
    default:
      throw new Error(`fault proxy: not RESP (type byte 0x${(type ?? 0).toString(16)})`);
  }
}

/** One command from a client: a RESP array of bulk strings, or an inline command line. */
function parseCommand(buf: Buffer, start: number): { end: number; cmd: ProxiedCommand } | null {
  if (start >= buf.length) return null;
  if (buf[start] !== 0x2a) {
    const eol = lineEnd(buf, start);
    if (eol < 0) return null;
    const words = buf.toString('utf8', start, eol).trim().split(/\s+/).filter(Boolean);
    const bytes = buf.subarray(start, eol + 2);
    return {
      end: eol + 2,
      cmd: {
        name: (words[0] ?? '').toUpperCase(),
        args: words.slice(1).map((w) => Buffer.from(w)),
        bytes,
      },
    };
  }
  const eol = lineEnd(buf, start + 1);
  if (eol < 0) return null;
  const n = Number(buf.toString('latin1', start + 1, eol));
  let at = eol + 2;
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    if (buf[at] === undefined) return null;
    const e = lineEnd(buf, at + 1);
    if (e < 0) return null;
    const len = Number(buf.toString('latin1', at + 1, e));
    const from = e + 2;
    if (from + len + 2 > buf.length) return null;
    parts.push(buf.subarray(from, from + len));
    at = from + len + 2;
  }
  const [name, ...args] = parts;
  return {
    end: at,
    cmd: {
      name: (name?.toString('utf8') ?? '').toUpperCase(),
      args,
      bytes: buf.subarray(start, at),
    },
  };
}

// ---------------------------------------------------------------------------------------------

interface Pending {
  drop?: Arm;
  cmd: ProxiedCommand;
}

/** One client connection and its server connection. */
class Link {
  private up: Buffer = Buffer.alloc(0);
  private down: Buffer = Buffer.alloc(0);
  private readonly pending: Pending[] = [];
  /** Set once a command whose reply will be dropped was sent: nothing after it is forwarded. */
  private holding = false;
  private pubsub = false;
  private closed = false;
  private sendAt = 0;
  private sendChain: Promise<void> = Promise.resolve();

  constructor(
    private readonly client: Socket,
    private readonly server: Socket,
    private readonly owner: ProxyCore,
  ) {
    client.on('data', (d: Buffer) => this.fromClient(d));
    server.on('data', (d: Buffer) => this.fromServer(d));
    for (const s of [client, server]) {
      s.on('error', () => this.cut());
      s.on('close', () => this.cut());
    }
  }

  private fromClient(d: Buffer): void {
    if (this.closed) return;
    this.up = this.up.length ? Buffer.concat([this.up, d]) : d;
    let at = 0;
    const out: Buffer[] = [];
    for (;;) {
      if (this.holding) {
        // Everything after the doomed command is withheld: it never reaches the server, so the
        // client's resend after reconnecting runs it exactly once.
        this.up = Buffer.alloc(0);
        break;
      }
      const parsed = parseCommand(this.up, at);
      if (!parsed) break;
      at = parsed.end;
      const cmd: ProxiedCommand = { ...parsed.cmd, bytes: Buffer.from(parsed.cmd.bytes) };
      if (PUBSUB.has(cmd.name)) this.pubsub = true;
      const drop = this.pubsub ? undefined : this.owner.arms.take(cmd);
      if (drop) this.holding = true;
      this.pending.push({ cmd, drop });
      this.owner.commands++;
      out.push(cmd.bytes);
    }
    if (!this.holding) this.up = this.up.subarray(at);
    if (out.length) this.toServer(Buffer.concat(out));
  }

  private toServer(bytes: Buffer): void {
    const latency = this.owner.latencyMs;
    if (latency <= 0 && this.sendAt <= Date.now()) {
      this.server.write(bytes);
      return;
    }
    // Same delay for every chunk, sent in arrival order even if the latency changes meanwhile.
    this.sendAt = Math.max(Date.now() + latency, this.sendAt);
    const at = this.sendAt;
    this.sendChain = this.sendChain.then(
      () =>
        new Promise<void>((resolve) => {
          setTimeout(
            () => {
              if (!this.closed) this.server.write(bytes);
              resolve();
            },
            Math.max(0, at - Date.now()),
          );
        }),
    );
  }

  private fromServer(d: Buffer): void {
    if (this.closed) return;
    if (this.pubsub && !this.pending.some((p) => p.drop)) {
      this.client.write(d);
      return;
    }
    this.down = this.down.length ? Buffer.concat([this.down, d]) : d;
    let at = 0;
    for (;;) {
      const end = valueEnd(this.down, at);
      if (end < 0) break;
      const isPush = this.down[at] === 0x3e;
      const p = isPush ? undefined : this.pending.shift();
      if (p?.drop) {
        if (at > 0) this.client.write(this.down.subarray(0, at));
        this.owner.dropped++;
        const arm = p.drop;
        this.cut();
        arm.resolve(p.cmd);
        return;
      }
      at = end;
    }
    if (at > 0) this.client.write(this.down.subarray(0, at));
    this.down = this.down.subarray(at);
  }

  cut(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.destroy();
    this.server.destroy();
    this.owner.links.delete(this);
    // Cut (by cutAll, or by either side) after the doomed command reached the server: its reply
    // is lost all the same, which is what the arm asked for.
    for (const p of this.pending.splice(0)) {
      if (!p.drop) continue;
      this.owner.dropped++;
      p.drop.resolve(p.cmd);
    }
  }
}

interface ProxyCore {
  arms: Arms;
  links: Set<Link>;
  latencyMs: number;
  commands: number;
  dropped: number;
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}

async function startWithArms(options: FaultProxyOptions, arms: Arms): Promise<FaultProxy> {
  const target = { host: options.target.host, port: options.target.port };
  const core: ProxyCore = { arms, links: new Set(), latencyMs: 0, commands: 0, dropped: 0 };
  let down: false | 'refuse' | 'hang' = false;
  let accepted = 0;
  const held = new Set<Socket>();
  const server = createServer((client) => {
    accepted++;
    client.setNoDelay(true);
    if (down === 'refuse') {
      client.destroy();
      return;
    }
    if (down === 'hang') {
      held.add(client);
      client.on('error', () => client.destroy());
      client.on('close', () => held.delete(client));
      client.resume();
      return;
    }
    const upstream = new Socket();
    upstream.setNoDelay(true);
    // Until the server side is connected, the client's bytes wait in the paused socket.
    client.pause();
    const link = new Link(client, upstream, core);
    core.links.add(link);
    upstream.connect(target.port, target.host, () => client.resume());
  });
  const port = await listen(server, options.port ?? 0);
  const cutAll = () => {
    for (const l of [...core.links]) l.cut();
    for (const h of [...held]) h.destroy();
    held.clear();
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    target,
    get connections() {
      return core.links.size + held.size;
    },
    get accepted() {
      return accepted;
    },
    get commands() {
      return core.commands;
    },
    get dropped() {
      return core.dropped;
    },
    dropNextReply: (match) => arms.add(match),
    cutAll,
    setDown(d: boolean, mode: 'refuse' | 'hang' = 'refuse') {
      if (d || down) cutAll();
      down = d ? mode : false;
    },
    setLatencyMs(ms: number) {
      if (!Number.isFinite(ms) || ms < 0) throw new Error(`latency must be >= 0 ms, got ${ms}`);
      core.latencyMs = ms;
    },
    close: async () => {
      cutAll();
      arms.cancelAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Starts a fault proxy in front of one Redis server. */
export function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  return startWithArms(options, new Arms());
}

/** One proxy per Cluster node, with what an ioredis `Cluster` needs to use only them. */
export interface ClusterFaultProxy {
  /** One proxy per node, in the order of `nodes`. */
  proxies: FaultProxy[];
  /** Seed nodes for `new Cluster(startupNodes, { natMap })`: the proxies. */
  startupNodes: { host: string; port: number }[];
  /** ioredis `natMap`: each node's announced `host:port` → its proxy. */
  natMap: Record<string, { host: string; port: number }>;
  /** As {@link FaultProxy.dropNextReply}; "next" means the next matching command on any node. */
  dropNextReply(match?: CommandMatch): Promise<ProxiedCommand | undefined>;
  /** Cuts every connection through every proxy. */
  cutAll(): void;
  /** As {@link FaultProxy.setDown}, on every node. */
  setDown(down: boolean, mode?: 'refuse' | 'hang'): void;
  /** As {@link FaultProxy.setLatencyMs}, on every node. */
  setLatencyMs(ms: number): void;
  /** Closes every proxy. */
  close(): Promise<void>;
}

/**
 * Starts one proxy per Cluster node. `nodes` are the addresses the nodes announce (as in
 * CLUSTER SLOTS); for the harness cluster that is `servers().clusterNodes`.
 */
export async function startClusterFaultProxy(
  nodes: ReadonlyArray<{ host: string; port: number }>,
): Promise<ClusterFaultProxy> {
  const arms = new Arms();
  const proxies = await Promise.all(nodes.map((n) => startWithArms({ target: n }, arms)));
  const natMap: Record<string, { host: string; port: number }> = {};
  for (const p of proxies)
    natMap[`${p.target.host}:${p.target.port}`] = { host: p.host, port: p.port };
  return {
    proxies,
    startupNodes: proxies.map((p) => ({ host: p.host, port: p.port })),
    natMap,
    dropNextReply: (match) => arms.add(match),
    cutAll: () => {
      for (const p of proxies) p.cutAll();
    },
    setDown: (d, mode) => {
      for (const p of proxies) p.setDown(d, mode);
    },
    setLatencyMs: (ms) => {
      for (const p of proxies) p.setLatencyMs(ms);
    },
    close: async () => {
      await Promise.all(proxies.map((p) => p.close()));
    },
  };
}
