// Restarts lose nothing: the CA and server certificates, accounts, phones and their SMS, relay codes, and everything
// the sandbox signed before (push certificates, validation data, gateway signatures) are still there and still valid.
// The config file is applied idempotently. The CLI starts, answers account commands through the admin API while
// running and directly on the data dir when stopped, and shuts down cleanly on SIGTERM.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { fromBase64, toHex } from '../../lib/codec/bytes';
import type { SandboxConfig } from '../../sandbox/config';
import type { Sandbox } from '../../sandbox/sandbox';
import { verifyGatewaySignature } from '../../sandbox/sms-gateway';
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
