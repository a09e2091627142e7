/** azscale/session (being built; see docs/session.md). */
export {};
