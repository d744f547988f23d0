// Types for scripts/static-server.mjs, so TypeScript callers (the Playwright harness) can import it.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

export declare const SANDBOX_CA_PATH: '/sandbox-ca.pem';

export interface StaticServerOptions {
  /** The static export to serve (out/). */
  dir: string;
  /** The PEM served at /sandbox-ca.pem; without it that path is a 404. */
  caFile?: string;
}

export interface RunningStaticServer {
  server: Server;
  port: number;
  /** e.g. http://127.0.0.1:41234 (no trailing slash). */
  url: string;
  close(): Promise<void>;
}

export declare function staticHandler(options: StaticServerOptions): (req: IncomingMessage, res: ServerResponse) => void;

export declare function startStaticServer(options: StaticServerOptions & { host?: string; port?: number }): Promise<RunningStaticServer>;
