/** azscale/worker (being built; see docs/worker.md). */
export {};
