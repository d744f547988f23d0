import { runCryptoBench } from './crypto-core';

(globalThis as unknown as { __bench: () => Promise<unknown> }).__bench = () => runCryptoBench('chromium');
