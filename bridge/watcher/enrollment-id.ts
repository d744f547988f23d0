// Enrollment ids and shards. An id is derived from the push certificate, so a device that enrolls again lands on the
// same id (replacing its old enrollment, which proving the key already entitles it to) and on the same shard; and
// the shard of any request can be computed from the id in its path alone.
import { createHash } from 'node:crypto';

/** 22 base64url characters: 128 bits of SHA-256. */
export const ENROLLMENT_ID = /^[A-Za-z0-9_-]{22}$/;

export function enrollmentIdFor(certificate: Uint8Array): string {
  return createHash('sha256').update('cerulean push watcher enrollment\0').update(certificate).digest().subarray(0, 16).toString('base64url');
}

/** Which of `count` shards holds `id`: the first four bytes of SHA-256(id), modulo count. */
export function shardOf(id: string, count: number): number {
  return createHash('sha256').update(id, 'utf8').digest().readUInt32BE(0) % count;
}
