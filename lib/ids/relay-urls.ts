// The registration relays' default addresses (ids.md §8), apart from the relay client so the PWA's onboarding can
// show them without loading the network stack.

/** Beeper's public relay, the default of [BG] and [RP]. */
export const BEEPER_RELAY_URL = 'https://registration-relay.beeper.com';
/** The sandbox's relay; `.invalid` never resolves on the Internet, only through the sandbox's host map. */
export const SANDBOX_RELAY_URL = 'https://registration-relay.sandbox.cerulean.invalid';
