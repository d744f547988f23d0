// Command line entry: `tsx bridge/main.ts [--config bridge.json]`. Settings come from the config file, then
// CERULEAN_BRIDGE_* environment variables (which win). SIGINT/SIGTERM stop it cleanly; a second signal exits
// at once.
import path from 'node:path';
import { type BridgeOptions, optionsFromEnv, readConfigFile } from './config';
import { createLogger, errorFields } from './log';
import { startBridge } from './server';

const USAGE = `usage: tsx bridge/main.ts [--config <file.json>]
Settings: a JSON config file and/or CERULEAN_BRIDGE_* environment variables; see bridge/README.md.`;

function configPath(argv: readonly string[]): string | undefined {
  let file: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else if (arg === '--config' && i + 1 < argv.length) {
      file = argv[++i];
    } else if (arg.startsWith('--config=')) {
      file = arg.slice('--config='.length);
    } else {
      console.error(`unknown argument: ${arg}\n${USAGE}`);
      process.exit(2);
    }
  }
  return file;
}

const log = createLogger('info');
try {
  const file = configPath(process.argv.slice(2));
  const fromFile: BridgeOptions = file === undefined ? {} : readConfigFile(file);
  // A host map named in the config file is found next to it.
  if (file !== undefined && fromFile.hostMapFile !== undefined) {
    fromFile.hostMapFile = path.resolve(path.dirname(file), fromFile.hostMapFile);
  }
  const bridge = await startBridge({ ...fromFile, ...optionsFromEnv(process.env) });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    log.info('bridge.signal', { signal });
    bridge.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error('bridge.stop-failed', errorFields(err));
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
} catch (err) {
  log.error('bridge.start-failed', errorFields(err));
  process.exit(1);
}
