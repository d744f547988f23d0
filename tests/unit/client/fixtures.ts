// Shared test data for the lib/client suites (test code only).
import { fromBase64 } from '../../../lib/codec/bytes';
import { MemoryStorage } from '../../../lib/store/memory-store';
import type { ClientStore } from '../../../lib/store/types';

/** A 1×1 PNG (signature, IHDR, IDAT, IEND): 70 bytes. */
export const PNG_BASE64 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
export const PNG = fromBase64(PNG_BASE64);
/** The start of a JPEG (SOI, APP0 "JFIF", a quantisation table header) and EOI: enough for the type check. */
export const JPEG_BASE64 = '/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////////////2Q==';

export function memoryStore(): Promise<ClientStore> {
  return new MemoryStorage().open();
}
