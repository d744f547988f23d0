// activateDevice against a sandbox albert that verifies FairPlay (off by default; on here): the FairPlay signature
// this client makes is the one albert checks, a missing one is refused with albert's reason, and the certificate
// issued works at the courier.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activateDevice } from '../../lib/apns/albert';
import { ApnsError } from '../../lib/apns/errors';
import { fromBase64 } from '../../lib/codec/bytes';
import { startApnsWorld, startClient, type ApnsWorld } from './apns-helpers';

const RSA_SHA1 = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-1' } as const;

describe('albert with FairPlay verification', () => {
  let world: ApnsWorld;
  beforeAll(async () => {
    world = await startApnsWorld({ albert: { verifyFairPlay: true } });
  });
  afterAll(async () => {
    await world?.close();
  });

  it('accepts an activation signed with the FairPlay identity, and the certificate opens the courier', async () => {
    const identity = await world.sandbox.pki.fairPlayIdentity();
    const der = fromBase64(identity.privateKeyPem.replace(/-----[^-]+-----/g, ''));
    const privateKey = await crypto.subtle.importKey('pkcs8', new Uint8Array(der), RSA_SHA1, false, ['sign']);
    const device = await world.activate({ fairPlay: { privateKey, certificateChain: identity.certificateChain } });
    expect(await world.sandbox.pki.verifyPushCertificate(device.certificate)).not.toBeNull();
    const h = startClient(world, device);
    try {
      expect(await h.client.whenConnected()).toHaveLength(32);
    } finally {
      await h.client.close();
    }
  });

  it("refuses an activation without FairPlay, and the error carries albert's reason", async () => {
    const err = await world.activate().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApnsError);
    expect(err).toMatchObject({ code: 'activation-failed', status: 403, reason: 'FairPlay signature is not valid' });
  });

  it('reports the reason for a malformed request', async () => {
    const err = await activateDevice({ http: (req) => world.albert({ ...req, body: new Uint8Array(0) }) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'activation-failed', status: 400, reason: 'Missing activation-info' });
  });
});
