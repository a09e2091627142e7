/** azscale/db (being built; see docs/db.md). */
export {};
