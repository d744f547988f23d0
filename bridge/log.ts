// Structured logs: one JSON object per line, one line per event. Callers pass only metadata (addresses, ports,
// counts, codes); payload bytes, URLs and the access token never reach a log call.

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFields = Readonly<Record<string, string | number | boolean | undefined>>;
export type LogSink = (line: string) => void;

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export const stdoutSink: LogSink = (line) => {
  process.stdout.write(`${line}\n`);
};

export function createLogger(level: LogLevel, sink: LogSink = stdoutSink): Logger {
  const at = (lineLevel: Exclude<LogLevel, 'silent'>) => (event: string, fields?: LogFields) => {
    if (RANK[lineLevel] < RANK[level]) return;
    sink(JSON.stringify({ time: new Date().toISOString(), level: lineLevel, event, ...fields }));
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Loggable facts about an error: its code and message, nothing it might carry. */
export function errorFields(err: unknown): LogFields {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return { error: err.message, errorCode: typeof code === 'string' ? code : undefined };
  }
  return { error: String(err) };
}
