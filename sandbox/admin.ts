// The admin page: loopback-only plain HTTP, for a person running the sandbox (or a test) to do what a real phone and
// a trusted device would: create accounts and phones, read 2FA codes and SMS, "send" a REG-REQ and see the REG-RESP,
// and create registration codes for the relay. An HTML page with plain forms, and the same actions as a JSON API:
//
//   GET  /api/state                       everything below in one object
//   GET  /api/accounts                    POST /api/accounts     {appleId, password, twoFactor?, handles?}
//   GET  /api/two-factor?appleId=…        the latest code
//   GET  /api/phones                      POST /api/phones       {number, mccMnc?}
//   GET  /api/sms?number=…                POST /api/sms          {from, text, to?} → {reply}
//   GET  /api/relay-codes                 POST /api/relay-codes  {code?, name?, versions?}
//
// Requests must name the loopback address in Host (no DNS rebinding) and, for POSTs, come from this origin if they
// carry an Origin header; the JSON API needs Content-Type application/json, which a cross-site form cannot send.
import { CeruleanError } from '../lib/errors';
import type { Accounts, AccountView, TwoFactorCode } from './accounts';
import type { Log } from './context';
import {
  escapeHtml,
  HttpError,
  HttpRouter,
  htmlResponse,
  jsonResponse,
  listenHttp,
  readFormBody,
  readJsonBody,
  type Listener,
  type RouteHandler,
  type ServiceResponse,
} from './http-service';
import type { SandboxPki } from './pki';
import type { RegistrationRelay } from './relay';
import { GATEWAY_ADDRESS, type SmsGateway } from './sms-gateway';

export interface AdminDeps {
  accounts: Accounts;
  gateway: SmsGateway;
  relay: RegistrationRelay;
  pki: SandboxPki;
  port: number;
  log: Log;
}

const LOOPBACK = '127.0.0.1';

export async function startAdmin(deps: AdminDeps): Promise<Listener & { url: string }> {
  const router = new HttpRouter(deps.log);
  let port = 0;
  const allowedHosts = () => [`${LOOPBACK}:${port}`, `localhost:${port}`];
  const guard = (handler: RouteHandler): RouteHandler => async (req) => {
    if (!allowedHosts().includes(String(req.headers.host ?? '').toLowerCase())) throw new HttpError(403, 'Forbidden host');
    const origin = req.headers.origin;
    if (req.method !== 'GET' && origin !== undefined && !allowedHosts().some((h) => origin === `http://${h}`)) {
      throw new HttpError(403, 'Forbidden origin');
    }
    try {
      return await handler(req);
    } catch (e) {
      if (e instanceof CeruleanError) throw new HttpError(e.code === 'exists' ? 409 : 400, e.message);
      throw e;
    }
  };
  const api = (path: string, methods: string[], handler: RouteHandler) =>
    router.add({
      host: '*',
      path,
      methods,
      schemes: ['http'],
      maxBodyBytes: 64 * 1024,
      contentTypes: ['application/json'],
      handler: guard(handler),
      onError: (status, reason) => jsonResponse({ error: reason }, status),
    });
  const form = (path: string, handler: (f: URLSearchParams) => Promise<string>) =>
    router.add({
      host: '*',
      path,
      methods: ['POST'],
      schemes: ['http'],
      maxBodyBytes: 64 * 1024,
      contentTypes: ['application/x-www-form-urlencoded'],
      handler: guard(async (req) => {
        const notice = await handler(readFormBody(req));
        return { status: 303, headers: { location: `/?notice=${encodeURIComponent(notice)}` } };
      }),
      onError: (status, reason) => page(deps, `Error: ${reason}`, status),
    });

  const state = () => ({
    caFile: deps.pki.caFile,
    gateway: GATEWAY_ADDRESS,
    accounts: accountsWithCodes(deps.accounts),
    phones: deps.accounts.listPhones().map((p) => ({ ...p, sms: deps.accounts.smsInbox(p.number) })),
    relayCodes: deps.relay.listCodes(),
  });

  router.add({
    host: '*',
    path: '/',
    methods: ['GET'],
    schemes: ['http'],
    handler: guard((req) => page(deps, req.query.get('notice') ?? undefined)),
  });
  api('/api/state', ['GET'], () => jsonResponse(state()));
  api('/api/accounts', ['GET', 'POST'], async (req) => {
    if (req.method === 'GET') return jsonResponse(accountsWithCodes(deps.accounts));
    const b = object(readJsonBody(req));
    const account = await deps.accounts.createAccount({
      appleId: b.appleId as string,
      password: b.password as string,
      twoFactor: b.twoFactor === true,
      handles: Array.isArray(b.handles) ? (b.handles as string[]) : undefined,
    });
    return jsonResponse(account, 201);
  });
  api('/api/two-factor', ['GET'], (req) => {
    const code = deps.accounts.latestTwoFactorCode(req.query.get('appleId') ?? '');
    if (!code) throw new HttpError(404, 'no code has been issued for that account');
    return jsonResponse(code);
  });
  api('/api/phones', ['GET', 'POST'], async (req) => {
    if (req.method === 'GET') return jsonResponse(deps.accounts.listPhones());
    const b = object(readJsonBody(req));
    return jsonResponse(await deps.accounts.addPhone({ number: b.number as string, mccMnc: optionalString(b.mccMnc) }), 201);
  });
  api('/api/sms', ['GET', 'POST'], async (req) => {
    if (req.method === 'GET') {
      const number = req.query.get('number') ?? '';
      if (!deps.accounts.getPhone(number)) throw new HttpError(404, 'no such phone');
      return jsonResponse(deps.accounts.smsInbox(number));
    }
    const b = object(readJsonBody(req));
    if (typeof b.text !== 'string') throw new HttpError(400, 'text is required');
    return jsonResponse(await deps.gateway.receive(String(b.from ?? ''), b.text, optionalString(b.to)));
  });
  api('/api/relay-codes', ['GET', 'POST'], async (req) => {
    if (req.method === 'GET') return jsonResponse(deps.relay.listCodes());
    const b = object(readJsonBody(req));
    return jsonResponse(await deps.relay.createCode({ code: optionalString(b.code), name: optionalString(b.name), versions: b.versions as never }), 201);
  });

  form('/form/account', async (f) => {
    const a = await deps.accounts.createAccount({
      appleId: f.get('appleId') ?? '',
      password: f.get('password') ?? '',
      twoFactor: f.get('twoFactor') === 'on',
      handles: (f.get('handles') ?? '').split(/[\s,]+/).filter(Boolean),
    });
    return `Created ${a.appleId}`;
  });
  form('/form/phone', async (f) => `Saved ${(await deps.accounts.addPhone({ number: f.get('number') ?? '', mccMnc: f.get('mccMnc') || undefined })).number}`);
  form('/form/sms', async (f) => {
    const r = await deps.gateway.receive(f.get('from') ?? '', f.get('text') ?? '', f.get('to') || undefined);
    return r.reply ? `Gateway replied: ${r.reply}` : `Sent${r.error ? ` (no reply: ${r.error})` : ''}`;
  });
  form('/form/relay-code', async (f) => `Registration code ${(await deps.relay.createCode({ name: f.get('name') || undefined })).code}`);

  const listener = await listenHttp(router, { host: LOOPBACK, port: deps.port, log: deps.log });
  port = listener.port;
  return { ...listener, url: `http://${LOOPBACK}:${port}/` };
}

function accountsWithCodes(accounts: Accounts): Array<AccountView & { twoFactorCode: TwoFactorCode | null }> {
  return accounts.listAccounts().map((a) => ({ ...a, twoFactorCode: accounts.latestTwoFactorCode(a.appleId) ?? null }));
}

function object(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HttpError(400, 'body must be a JSON object');
  return v as Record<string, unknown>;
}

function optionalString(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

function page(deps: AdminDeps, notice: string | undefined, status = 200): ServiceResponse {
  const e = escapeHtml;
  const time = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
  const accounts = accountsWithCodes(deps.accounts)
    .map((a) => {
      const c = a.twoFactorCode;
      const code = c ? `<code>${e(c.code)}</code> ${c.used ? '(used)' : `until ${time(c.expiresAt)}`}` : '—';
      return `<tr><td>${e(a.appleId)}</td><td>${e(a.profileId)}</td><td>${a.twoFactor ? 'on' : 'off'}</td><td>${code}</td><td>${a.handles.map(e).join('<br>')}</td></tr>`;
    })
    .join('');
  const phones = deps.accounts
    .listPhones()
    .map((p) => {
      const sms = deps.accounts
        .smsInbox(p.number)
        .slice(-10)
        .map((m) => `<li>${time(m.at)} ${m.direction === 'sent' ? '→' : '←'} ${e(m.peer)}: <code>${e(m.text)}</code></li>`)
        .join('');
      return `<tr id="phone-${e(p.number)}"><td>${e(p.number)}</td><td>${e(p.mccMnc)}</td><td><ul>${sms}</ul></td></tr>`;
    })
    .join('');
  const phoneOptions = deps.accounts.listPhones().map((p) => `<option>${e(p.number)}</option>`).join('');
  const codes = deps.relay
    .listCodes()
    .map((r) => `<tr><td><code>${e(r.code)}</code></td><td>${e(r.name)}</td><td>${e(r.versions.hardware_version)} ${e(r.versions.software_name)} ${e(r.versions.software_version)}</td></tr>`)
    .join('');
  const html = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Cerulean sandbox</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;margin:.5em 0 1em}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}ul{margin:0;padding-left:1.2em}
form{margin:.5em 0 1.5em}input{margin-right:.5em}.notice{background:#eef;padding:.6em;border:1px solid #99c}</style></head>
<body><h1>Cerulean sandbox</h1>
<p>Root CA: <code>${e(deps.pki.caFile)}</code> · SMS gateway short code: <code>${GATEWAY_ADDRESS}</code></p>
${notice ? `<p class="notice">${e(notice)}</p>` : ''}
<h2>Apple IDs</h2>
<table><tr><th>Apple ID</th><th>profile-id</th><th>2FA</th><th>latest 2FA code</th><th>handles</th></tr>${accounts}</table>
<form method="post" action="/form/account"><input name="appleId" placeholder="alice@example.com" required>
<input name="password" type="password" placeholder="password" required><label><input type="checkbox" name="twoFactor">2FA</label>
<input name="handles" placeholder="extra handles (tel:+1…)"><button>Create account</button></form>
<h2>Phones</h2>
<table><tr><th>number</th><th>MCC-MNC</th><th>SMS (latest 10)</th></tr>${phones}</table>
<form method="post" action="/form/phone"><input name="number" placeholder="+15555550100" required>
<input name="mccMnc" placeholder="310260"><button>Add phone</button></form>
<form method="post" action="/form/sms"><select name="from">${phoneOptions}</select>
<input name="to" value="${GATEWAY_ADDRESS}" size="10"><input name="text" placeholder="REG-REQ?v=3;t=…;r=…;" size="90" required>
<button>Send SMS</button></form>
<h2>Registration relay codes</h2>
<table><tr><th>code</th><th>name</th><th>device</th></tr>${codes}</table>
<form method="post" action="/form/relay-code"><input name="name" placeholder="name"><button>Create code</button></form>
</body></html>`;
  return htmlResponse(html, status);
}
