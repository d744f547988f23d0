// The trust anchors for the client's TLS: Apple's roots (pasted by the user) or the sandbox's CA. The sandbox CA is
// fetched from the app's own origin, which is already trusted (it serves this code), and cached so the app still
// opens offline; the bridge in between is never trusted.
import { CeruleanError } from '../../lib/errors';
import type { AppSettings } from './settings';

const CA_CACHE_KEY = 'cerulean.sandbox-ca';
const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;

async function fetchSandboxCa(url: string): Promise<string> {
  let text: string;
  try {
    const res = await fetch(url, { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    text = await res.text();
  } catch (e) {
    throw new CeruleanError('sandbox-ca-unavailable', `could not fetch ${url}`, { cause: e });
  }
  if (!PEM_CERT.test(text)) throw new CeruleanError('sandbox-ca-unavailable', `${url} is not a PEM certificate`);
  try {
    localStorage.setItem(CA_CACHE_KEY, text);
  } catch {
    // Only the offline fallback is lost.
  }
  return text;
}

/**
 * The roots for these settings. `preferCache` (opening a registered device) uses the cached sandbox CA when the
 * fetch fails, so a device can open offline; onboarding always wants the live one.
 */
export async function loadTrustedRoots(settings: AppSettings, options: { preferCache?: boolean } = {}): Promise<string[]> {
  if (settings.mode === 'apple') {
    const pem = settings.appleRootsPem?.trim();
    if (!pem) throw new CeruleanError('apple-roots-missing', "Apple's root certificates are not configured");
    if (!PEM_CERT.test(pem)) throw new CeruleanError('bad-trust-anchor', 'the Apple roots are not PEM certificates');
    return [pem];
  }
  try {
    return [await fetchSandboxCa(settings.sandboxCaUrl)];
  } catch (e) {
    const cached = options.preferCache ? readCachedCa() : undefined;
    if (cached) return [cached];
    throw e;
  }
}

function readCachedCa(): string | undefined {
  try {
    return localStorage.getItem(CA_CACHE_KEY) ?? undefined;
  } catch {
    return undefined;
  }
}
