// Verification codes: a fixed vector, the same code on both sides (two memory stores standing in for two people's
// devices), and a different code after any key change, a substituted key, or a device coming or going.
import { describe, expect, it } from 'vitest';
import { presentDevices, verificationCode, VERIFICATION_ITERATIONS, type SelfDevice } from '../../../lib/client/verification';
import { fingerprintsOf } from '../../../lib/store/security-events';
import type { ClientStore, DeviceObservation } from '../../../lib/store/types';
import { memoryStore } from './fixtures';

const ALICE = 'mailto:alice@example.com';
const BOB = 'tel:+15550001111';
const BOB_MAIL = 'mailto:bob@example.com';
/** The code for the fixed fingerprints below, from an independent implementation of the construction. */
const FIXED_CODE = '18066 17462 72121 40709 00873 18047 25981 50404 48600 07607 55210 57932';

/** A device with distinct keys: its token byte `n`, identity key generation `gen`. */
function device(n: number, gen = 0): DeviceObservation {
  return {
    pushToken: new Uint8Array(32).fill(n),
    identityKey: new Uint8Array([1, n, gen]),
    ngmDeviceKey: new Uint8Array([2, n]),
    ngmPrekey: new Uint8Array([3, n]),
  };
}

const selfOf = (o: DeviceObservation): SelfDevice => ({ pushToken: o.pushToken, fingerprints: fingerprintsOf(o) });

async function code(store: ClientStore, own: string[], self: SelfDevice, other: string) {
  return verificationCode(await presentDevices(store, own, self), await presentDevices(store, [other]));
}

describe('verificationCode', () => {
  it('matches a fixed vector', () => {
    // Checked against an independent implementation of the documented construction.
    const own = [{ identity: '11'.repeat(32), ngmDevice: '22'.repeat(32) }];
    const theirs = [{ identity: '33'.repeat(32) }, { ngmPrekey: '44'.repeat(32) }];
    expect(VERIFICATION_ITERATIONS).toBe(5200);
    expect(verificationCode(own, theirs)).toEqual({ code: FIXED_CODE, ownDevices: 1, theirDevices: 2 });
    expect(verificationCode(theirs, own)?.code).toBe(FIXED_CODE);
    expect(FIXED_CODE).toMatch(/^(\d{5} ){11}\d{5}$/);
  });

  it('is undefined while either side has no devices', () => {
    expect(verificationCode([], [{ identity: '11'.repeat(32) }])).toBeUndefined();
    expect(verificationCode([{ identity: '11'.repeat(32) }], [])).toBeUndefined();
  });

  it('is the same on both sides, and changes with every key change on either side', async () => {
    const [a1, a2, b1] = [device(1), device(2), device(9)];
    const alice = await memoryStore();
    const bob = await memoryStore();
    await alice.devices.recordLookup(ALICE, [a1, a2]);
    await alice.devices.recordLookup(BOB, [b1]);
    // Bob's device is registered on both his handles; Alice knows him by one of them.
    await bob.devices.recordLookup(BOB, [b1]);
    await bob.devices.recordLookup(BOB_MAIL, [b1]);
    await bob.devices.recordLookup(ALICE, [a1, a2]);

    const atAlice = await code(alice, [ALICE], selfOf(a1), BOB);
    const atBob = await code(bob, [BOB, BOB_MAIL], selfOf(b1), ALICE);
    expect(atAlice).toEqual({ code: atBob!.code, ownDevices: 2, theirDevices: 1 });
    expect(atBob).toMatchObject({ ownDevices: 1, theirDevices: 2 });
    const seen = new Set([atAlice!.code]);

    // Alice's second device gets a new identity key; both sides look it up again.
    const a2new = device(2, 1);
    await alice.devices.recordLookup(ALICE, [a1, a2new]);
    await bob.devices.recordLookup(ALICE, [a1, a2new]);
    const afterIdentity = (await code(alice, [ALICE], selfOf(a1), BOB))!.code;
    expect((await code(bob, [BOB, BOB_MAIL], selfOf(b1), ALICE))!.code).toBe(afterIdentity);
    expect(seen.has(afterIdentity)).toBe(false);
    seen.add(afterIdentity);

    // Bob's signed prekey changes (his own device, so his side uses its own keys).
    const b1new = { ...b1, ngmPrekey: new Uint8Array([3, 9, 9]) };
    await alice.devices.recordLookup(BOB, [b1new]);
    const afterPrekey = (await code(alice, [ALICE], selfOf(a1), BOB))!.code;
    expect((await code(bob, [BOB, BOB_MAIL], selfOf(b1new), ALICE))!.code).toBe(afterPrekey);
    expect(seen.has(afterPrekey)).toBe(false);
    seen.add(afterPrekey);

    // Alice's second device goes away.
    await alice.devices.recordLookup(ALICE, [a1]);
    await bob.devices.recordLookup(ALICE, [a1]);
    const afterRemoval = await code(alice, [ALICE], selfOf(a1), BOB);
    expect(afterRemoval).toMatchObject({ ownDevices: 1, theirDevices: 1 });
    expect((await code(bob, [BOB, BOB_MAIL], selfOf(b1new), ALICE))!.code).toBe(afterRemoval!.code);
    expect(seen.has(afterRemoval!.code)).toBe(false);
  });

  it('exposes a key the directory substituted for this device', async () => {
    const [a1, b1] = [device(1), device(9)];
    const alice = await memoryStore();
    const bob = await memoryStore();
    await alice.devices.recordLookup(BOB, [b1]);
    // What a lying directory tells Alice's store about Alice's own device does not count: she uses her own keys.
    await alice.devices.recordLookup(ALICE, [device(1, 7)]);
    // Bob is handed a different key for Alice's device.
    await bob.devices.recordLookup(ALICE, [device(1, 7)]);
    const atAlice = await code(alice, [ALICE], selfOf(a1), BOB);
    const atBob = await code(bob, [BOB], selfOf(b1), ALICE);
    expect(atAlice!.code).not.toBe(atBob!.code);
  });

  it('counts this device even before any lookup of its own handle', async () => {
    const alice = await memoryStore();
    await alice.devices.recordLookup(BOB, [device(9)]);
    expect(await code(alice, [ALICE], selfOf(device(1)), BOB)).toMatchObject({ ownDevices: 1, theirDevices: 1 });
    expect(await code(alice, [ALICE], selfOf(device(1)), 'tel:+19999999999')).toBeUndefined();
  });
});
