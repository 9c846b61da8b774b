/** The catalog lineage reads: gateway/catalog/catalog.ts (shared with name resolution). */
export * from '../catalog/catalog.js';
