/** azscale/resilience (being built; see docs/resilience.md). */
export {};
