// Handles as people type them and as the client keeps them. The client speaks IDS URIs (`mailto:…`, `tel:+…`);
// people type addresses and phone numbers in any format.

const SCHEME = /^(mailto|tel):/i;
const EMAIL = /^[^\s@,;]+@[^\s@,;]+\.[^\s@,;]+$/;

/** What a person typed → the URI the client needs, or undefined when it is neither an e-mail nor a phone number. */
export function toHandleUri(input: string): string | undefined {
  const bare = input.trim().replace(SCHEME, '');
  if (bare.includes('@')) return EMAIL.test(bare) ? `mailto:${bare.toLowerCase()}` : undefined;
  let digits = bare.replace(/[\s().\-\u00a0]/g, '');
  if (digits.startsWith('00')) digits = `+${digits.slice(2)}`;
  if (!/^\+?[0-9]{5,15}$/.test(digits)) return undefined;
  // iMessage addresses phones in E.164; without a "+" the number is taken to already include its country code.
  return `tel:${digits.startsWith('+') ? digits : `+${digits}`}`;
}

/** The handles of a comma, semicolon or whitespace separated list, as typed. */
export function splitHandles(text: string): string[] {
  return text.split(/[\s,;]+/).filter((t) => t.length > 0);
}

/** A key under which two spellings of one handle compare equal. */
export function handleId(uri: string): string {
  const m = SCHEME.exec(uri);
  const scheme = m?.[1]?.toLowerCase();
  const rest = m ? uri.slice(m[0].length) : uri;
  if (scheme === 'mailto' || (!scheme && rest.includes('@'))) return `mailto:${rest.toLowerCase()}`;
  return `tel:${rest.replace(/[^0-9+]/g, '')}`;
}

export function sameHandle(a: string, b: string): boolean {
  return handleId(a) === handleId(b);
}

/** A handle for people: the URI scheme dropped. */
export function displayHandle(uri: string): string {
  return uri.replace(SCHEME, '');
}
