// Apple's push host names, apart from the code that talks to them: the PWA's first-load code (which tunnel is which)
// needs the names without pulling in TLS, X.509 and the courier client.
export const ALBERT_HOST = 'albert.apple.com';
export const COURIER_HOSTNAME = 'courier.push.apple.com';
/** Clients pick one of `1-courier…` to `50-courier…` at random (apns.md §1). */
export const COURIER_HOST_COUNT = 50;
export const COURIER_PORT = 5223;
