// Stands in for @reclaimprotocol/tls's bundled Mozilla root list in the PWA build (next.config.js aliases it here).
// lib/net/tls.ts turns the engine's own certificate check off and verifies chains against pinned anchors instead,
// so the list is never read, yet it would be about 150 KiB of gzip in the app's first load.
export const MOZILLA_ROOT_CA_LIST: string[] = [];
