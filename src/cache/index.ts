/** azscale/cache (being built; see docs/cache.md). */
export {};
