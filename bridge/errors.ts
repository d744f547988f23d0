// The bridge's own error type: a configuration value that cannot be used. Thrown at start-up only; a running
// bridge turns every bad input from a client into a refusal with a close code instead.
import { CeruleanError } from '../lib/errors';

export class BridgeConfigError extends CeruleanError {}
