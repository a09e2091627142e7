/** azscale/scaling (being built; see docs/scaling.md). */
export {};
