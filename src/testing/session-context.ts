/** What the session suite's case files are handed. */
import type {
  DistributedSessionManager,
  DistributedSessionManagerOptions,
} from '../session/index.js';
import type { Vitest } from './api.js';

/** @internal What the case files get. */
export interface SessionContext {
  it: (name: string, fn: () => Promise<void>) => void;
  expect: Vitest['expect'];
  make(options?: DistributedSessionManagerOptions): Promise<DistributedSessionManager>;
}
