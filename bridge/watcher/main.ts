// Command line entry: `tsx bridge/watcher/main.ts [--config watcher.json] [--<setting> <value> …]`. Settings come from
// the config file, then CERULEAN_WATCHER_* environment variables, then flags (each overriding the one before); see
// bridge/README.md, "Push watcher". SIGINT/SIGTERM stop it cleanly; a second signal exits at once.
import { createLogger, errorFields } from '../log';
import { readWatcherConfigFile, watcherArgs, watcherOptionsFromEnv } from './config';
import { startWatcher } from './watcher';

const USAGE = `usage: tsx bridge/watcher/main.ts [--config <file.json>] [--port N] [--data-dir DIR] [--host-map FILE]
       [--ca-file FILE] [--shard i/n] [--cors-origin ORIGIN]… [--allow pattern:port]… [other settings]
Settings: a JSON config file, CERULEAN_WATCHER_* environment variables and flags; see bridge/README.md.`;

const log = createLogger('info');
try {
  const args = watcherArgs(process.argv.slice(2));
  if (args.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const fromFile = args.config === undefined ? {} : readWatcherConfigFile(args.config);
  const watcher = await startWatcher({ ...fromFile, ...watcherOptionsFromEnv(process.env), ...args.options });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    log.info('watcher.signal', { signal });
    watcher.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error('watcher.stop-failed', errorFields(err));
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
} catch (err) {
  log.error('watcher.start-failed', errorFields(err));
  if ((err as { code?: unknown }).code === 'bad-arguments') console.error(USAGE);
  process.exit(1);
}
