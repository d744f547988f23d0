// Restarts lose nothing: the CA and server certificates, accounts, phones and their SMS, relay codes, and everything
// the sandbox signed before (push certificates, validation data, gateway signatures) are still there and still valid.
// The config file is applied idempotently. Over the wire, a notification queued for an offline device survives a
// clean restart and a kill -9 of the CLI mid-conversation, and reaches the device on its saved token exactly once;
// registrations and accounts are still there for the device's lookups and signed reads. The CLI starts, answers
// account commands through the admin API while running and directly on the data dir when stopped, and shuts down
// cleanly on SIGTERM.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { fromBase64, fromUtf8, toHex } from '../../lib/codec/bytes';
import type { PlistDict } from '../../lib/codec/plist';
import type { SandboxConfig } from '../../sandbox/config';
import { systemClock } from '../../sandbox/context';
import type { Sandbox } from '../../sandbox/sandbox';
import { protocolServices } from '../../sandbox/services';
import { verifyGatewaySignature } from '../../sandbox/sms-gateway';
import {
  AppleDevice,
  CourierLink,
  MADRID,
  clientData,
  fetchValidationData,
  getHandles,
  providerPush,
  registerDevice,
  sameBytes,
  signInAppleId,
  startSandboxCli,
  targetFromHostMap,
  type CliSandbox,
  type IdsUser,
  type Received,
  type SandboxTarget,
} from './sandbox-e2e-helpers';
import { adminRequest, appleRequest, makeCsr, seedPki, startTestSandbox, tempDir } from './sandbox-helpers';

const config: SandboxConfig = {
  accounts: [{ appleId: 'carol@example.com', password: 'hunter2', twoFactor: true, handles: ['tel:+15555550142'] }],
  phones: [{ number: '+15555550142', mccMnc: '310410' }],
  relayCodes: [{ code: 'TEST-CODE-0001', name: 'Carol’s Mac' }],
};

function leafFingerprint(sb: Sandbox, host: string): Promise<string> {
  const target = sb.resolve(`${host}:443`)!;
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: target.host, port: target.port, servername: host, ca: sb.caPem }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.end();
    });
    s.on('error', reject);
  });
}

describe('sandbox restart', () => {
  it('keeps accounts, CA, registrations and what it signed across a restart', async () => {
    const tmp = await tempDir();
    try {
      const a = await startTestSandbox(tmp.dir, { config });
      const profileId = a.accounts.getAccount('carol@example.com')!.profileId;
      await a.accounts.createAccount({ appleId: 'dave@example.com', password: 'pw' });
      const { pem } = await makeCsr();
      const push = await a.pki.issuePushCertificate(pem);
      const minted = a.relay.mintValidationData('TEST-CODE-0001');
      const token = crypto.getRandomValues(new Uint8Array(32));
      const { reply } = await a.gateway.receive('+15555550142', `REG-REQ?v=3;t=${toHex(token)};r=1;`);
      await a.accounts.signIn('carol@example.com', 'hunter2');
      const code = a.accounts.latestTwoFactorCode('carol@example.com')!.code;
      const caPem = a.caPem;
      const fingerprint = await leafFingerprint(a, 'identity.ess.apple.com');
      await a.close();

      const b = await startTestSandbox(tmp.dir, { config });
      try {
        expect(b.caPem).toBe(caPem);
        expect(await leafFingerprint(b, 'identity.ess.apple.com')).toBe(fingerprint);
        expect(b.accounts.getAccount('carol@example.com')).toMatchObject({
          profileId,
          twoFactor: true,
          handles: ['mailto:carol@example.com', 'tel:+15555550142'],
        });
        expect(b.accounts.getAccount('dave@example.com')).toBeDefined();
        expect(b.accounts.getPhone('+15555550142')).toMatchObject({ mccMnc: '310410' });
        expect(b.accounts.smsInbox('+15555550142').map((m) => m.text)).toContain(reply);
        expect(b.relay.listCodes().map((c) => c.code)).toEqual(['TEST-CODE-0001']);
        expect(b.relay.verifyValidationData(minted.data).status).toBe('ok');
        expect(await b.pki.verifyPushCertificate(push.der)).not.toBeNull();
        const sig = /;s=([0-9A-F]+)$/.exec(reply!)![1]!;
        expect(verifyGatewaySignature(b.pki, '+15555550142', token, Buffer.from(sig, 'hex'))).toBe(true);
        expect((await b.accounts.signIn('carol@example.com', `hunter2${code}`)).status).toBe('ok');
        expect((await b.accounts.signIn('dave@example.com', 'pw')).status).toBe('ok');
        // The relay still answers over HTTPS for the configured code.
        const res = await appleRequest(b, 'https://registration-relay.sandbox.cerulean.invalid/api/v1/bridge/get-validation-data', {
          headers: { authorization: 'Bearer TEST-CODE-0001' },
          body: '',
        });
        expect(res.status).toBe(200);
        expect(b.relay.verifyValidationData(fromBase64(JSON.parse(res.text).data)).status).toBe('ok');
        expect((await adminRequest(b, 'api/accounts')).text).toContain('dave@example.com');
      } finally {
        await b.close();
      }
    } finally {
      await tmp.remove();
    }
  });
});

type Proc = ChildProcessByStdio<null, Readable, Readable>;

function cli(args: string[]): Proc {
  return spawn(process.execPath, ['--import', 'tsx', 'sandbox/main.ts', ...args], {
    cwd: path.resolve(import.meta.dirname, '../..'),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

async function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = cli(args);
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => p.on('close', resolve));
  return { code, stdout, stderr };
}

describe('sandbox CLI', () => {
  it('starts, manages accounts online and offline, and stops cleanly on SIGTERM', async () => {
    const tmp = await tempDir();
    try {
      const configFile = path.join(tmp.dir, 'sandbox.json');
      await writeFile(configFile, JSON.stringify({ phones: [{ number: '+15555550177' }] }));
      const dataDir = path.join(tmp.dir, 'data');
      await seedPki(dataDir);
      const server = cli(['--data-dir', dataDir, '--port-base', '0', '--config', configFile]);
      let stdout = '';
      let stderr = '';
      server.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      await new Promise<void>((resolve, reject) => {
        server.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
          if (stdout.includes('(Ctrl-C to stop)')) resolve();
        });
        server.on('close', () => reject(new Error(`sandbox exited: ${stderr}`)));
      });
      expect(stdout).toContain(`root CA:  ${path.join(dataDir, 'pki', 'root-ca.pem')}`);
      expect(stdout).toMatch(/"identity\.ess\.apple\.com:443": "127\.0\.0\.1:\d+"/);
      expect(new X509Certificate(await readFile(path.join(dataDir, 'pki', 'root-ca.pem'))).subject).toContain('Cerulean Sandbox Root CA');
      // Logs are JSON lines on stderr and carry no secrets.
      for (const line of stderr.trim().split('\n').filter((l) => l.startsWith('{'))) expect(() => JSON.parse(line)).not.toThrow();

      const online = await run(['account', 'add', '--data-dir', dataDir, '--apple-id', 'erin@example.com', '--password', 's3cret!', '--two-factor']);
      expect(online.code, online.stderr).toBe(0);
      expect(JSON.parse(online.stdout)).toMatchObject({ appleId: 'erin@example.com', twoFactor: true });

      server.kill('SIGTERM');
      const exit = await new Promise<number | null>((resolve) => server.on('close', resolve));
      expect(exit).toBe(0);
      expect(existsSync(path.join(dataDir, 'store', 'LOCK'))).toBe(false);
      expect(stderr).not.toContain('s3cret!');

      const offline = await run(['account', 'list', '--data-dir', dataDir]);
      expect(offline.code, offline.stderr).toBe(0);
      expect(JSON.parse(offline.stdout).map((a: { appleId: string }) => a.appleId)).toEqual(['erin@example.com']);
      const bad = await run(['account', 'add', '--data-dir', dataDir, '--apple-id', 'nope', '--password', 'x']);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/Apple ID must be an email/);
    } finally {
      await tmp.remove();
    }
  });
});

/** A device from albert to an ID certificate: connected, subscribed, signed in and registered for its Apple ID. */
async function registeredDevice(
  t: SandboxTarget,
  name: string,
  appleId: string,
  password: string,
  code: string,
): Promise<{ device: AppleDevice; user: IdsUser }> {
  const device = await AppleDevice.activate(t, systemClock, name);
  expect((await device.connect()).status).toBe(0);
  device.subscribe();
  await device.requireLink().next(0x0e);
  const { user } = await signInAppleId(t, appleId, password);
  const res = await registerDevice(t, device, [{ user, uris: [`mailto:${appleId}`], clientData: clientData() }], await fetchValidationData(t, code));
  expect(res.plist['status']).toBe(0);
  expect(user.idCert).toBeDefined();
  return { device, user };
}

const payloadIs = (...texts: string[]) => (r: Received) => texts.includes(fromUtf8(r.payload));

describe('restart over the wire', () => {
  it('delivers a message queued for an offline device after a clean restart, on the token it saved', async () => {
    const tmp = await tempDir();
    const wireConfig: SandboxConfig = {
      accounts: [
        { appleId: 'dana@example.com', password: 'pw-dana' },
        { appleId: 'eve@example.com', password: 'pw-eve' },
      ],
      relayCodes: [{ code: 'RESTART-CODE-01' }],
    };
    const DANA = 'mailto:dana@example.com';
    const EVE = 'mailto:eve@example.com';
    const devices: AppleDevice[] = [];
    let b: Sandbox | undefined;
    try {
      const a = await startTestSandbox(tmp.dir, { config: wireConfig, services: protocolServices().services });
      const dana = await registeredDevice(a, 'dana-mac', 'dana@example.com', 'pw-dana', 'RESTART-CODE-01');
      const eve = await registeredDevice(a, 'eve-mac', 'eve@example.com', 'pw-eve', 'RESTART-CODE-01');
      devices.push(dana.device, eve.device);
      const toDana = (await eve.device.identities(eve.user, EVE, [DANA])).get(DANA)![0]!;
      await dana.device.disconnect();
      const U = crypto.getRandomValues(new Uint8Array(16));
      const P = crypto.getRandomValues(new Uint8Array(64));
      eve.device.send({ c: 100, v: 8, U, sP: EVE, dtl: [{ tP: DANA, t: dana.device.token!, sT: toDana['session-token']!, D: true, P }] });
      // Accepted (s 0) although Dana is offline: it is stored for her.
      expect((await eve.device.serverAcks(U, 1))[0]!['s']).toBe(0);
      const caPem = a.caPem;
      await eve.device.disconnect();
      await a.close();

      const protocol = protocolServices();
      b = await startTestSandbox(tmp.dir, { config: wireConfig, services: protocol.services });
      expect(b.caPem).toBe(caPem);
      expect(protocol.courier().pendingCount(dana.device.token!)).toBe(1);
      // New ports from the new host map; the client keeps trusting the CA it already had.
      const restarted = b;
      const target: SandboxTarget = { resolve: (hp) => restarted.resolve(hp), caPem, adminUrl: restarted.adminUrl };
      dana.device.target = target;
      const token = dana.device.token!;
      const r = await dana.device.connect();
      expect(r.status).toBe(0);
      expect(r.token).toBeUndefined(); // the saved token was accepted as it is
      dana.device.subscribe();
      const got: PlistDict = (await dana.device.next((x) => sameBytes(x.dict['U'], U))).dict;
      expect(got).toMatchObject({ c: 100, U, sP: EVE, tP: DANA, t: eve.device.token, P, D: true });
      await dana.device.requireLink().roundTrip();
      expect(protocol.courier().pendingCount(token)).toBe(0);
      // The registration, the account and the auth certificate from before the restart all still work.
      const self = (await dana.device.identities(dana.user, DANA, [DANA])).get(DANA)!;
      expect(self.map((i) => i['push-token'])).toEqual([token]);
      expect((await getHandles(target, dana.device, dana.user)).plist).toEqual({ status: 0, handles: [{ uri: DANA }] });
    } finally {
      for (const d of devices) await d.disconnect();
      await b?.close();
      await tmp.remove();
    }
  });

  it('loses nothing to kill -9 of the CLI mid-conversation: the queued notification arrives exactly once', async () => {
    const tmp = await tempDir();
    const dataDir = path.join(tmp.dir, 'data');
    const configFile = path.join(tmp.dir, 'sandbox.json');
    const frank = { appleId: 'frank@example.com', password: 'pw-frank', twoFactor: true };
    await writeFile(configFile, JSON.stringify({ accounts: [frank], relayCodes: [{ code: 'KILL-NINE-0001' }] }));
    await seedPki(dataDir);
    const FRANK = 'mailto:frank@example.com';
    const running: CliSandbox[] = [];
    let device: AppleDevice | undefined;
    try {
      const first = await startSandboxCli(dataDir, ['--config', configFile]);
      running.push(first);
      const reg = await registeredDevice(targetFromHostMap(first.hostMap), 'frank-mac', 'frank@example.com', 'pw-frank', 'KILL-NINE-0001');
      device = reg.device;
      const before = device.target;
      // N0 is delivered and acked before the crash; the keep-alive round trip proves the courier has stored the ack.
      expect((await providerPush(before, device.token!, MADRID, '{"n":0}')).status).toBe(200);
      await device.next(payloadIs('{"n":0}'));
      await device.requireLink().roundTrip();
      // N1 is queued while the device is away (the provider's 200 means it is on disk).
      await device.disconnect();
      expect((await providerPush(before, device.token!, MADRID, '{"n":1}')).status).toBe(200);
      // Mid-conversation: the device is back with a lookup in flight and no filter yet; another client is half-way
      // through its Connect frame.
      expect((await device.connect()).status).toBe(0);
      const lookup = device.lookup(reg.user, FRANK, [FRANK]).catch((e: unknown) => e);
      const other = await CourierLink.open(before);
      other.sendRaw(Uint8Array.of(0x07, 0x00, 0x00, 0x01, 0x00, 0x02, 0x00));
      first.proc.kill('SIGKILL');
      expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
      await lookup;
      expect(await device.requireLink().waitClosed()).toBe(true);
      expect(await other.waitClosed()).toBe(true);
      // It died without cleaning up after itself.
      expect(existsSync(path.join(dataDir, 'store', 'LOCK'))).toBe(true);

      const second = await startSandboxCli(dataDir, ['--config', configFile]);
      running.push(second);
      expect(second.hostMap.caPem).toBe(first.hostMap.caPem);
      device.target = { ...targetFromHostMap(second.hostMap), caPem: first.hostMap.caPem };
      const r = await device.connect();
      expect([r.status, r.token]).toEqual([0, undefined]);
      device.subscribe();
      await device.next(payloadIs('{"n":1}'));
      // Exactly once: neither N1 again nor N0 (the lookup's stored c:97 answer may come and is acked too).
      expect(await device.none(payloadIs('{"n":0}', '{"n":1}'), 400)).toBe(true);
      await device.requireLink().roundTrip();
      await device.disconnect();
      expect((await device.connect()).status).toBe(0);
      device.subscribe();
      await device.requireLink().next(0x0e); // nothing left stored
      // The account, the registration and the auth certificate outlived the crash.
      const self = (await device.identities(reg.user, FRANK, [FRANK])).get(FRANK)!;
      expect(self.map((i) => i['push-token'])).toEqual([device.token]);
      expect((await getHandles(device.target, device, reg.user)).plist).toEqual({ status: 0, handles: [{ uri: FRANK }] });

      second.proc.kill('SIGTERM');
      expect(await second.exited).toEqual({ code: 0, signal: null });
    } finally {
      await device?.disconnect();
      for (const c of running) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
      await Promise.all(running.map((c) => c.exited));
      await tmp.remove();
    }
  });
});
