/** azscale/observability (being built; see docs/observability.md). */
export {};
