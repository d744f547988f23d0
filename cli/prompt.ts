// Questions on stderr, answers from stdin, a line each. Lines are queued as they arrive, so answers piped in ahead
// of the question (scripts, tests) are not lost; end of input answers undefined.
import { createInterface, type Interface } from 'node:readline';

export class Prompter {
  private rl: Interface | undefined;
  private readonly lines: string[] = [];
  private readonly waiting: Array<(line: string | undefined) => void> = [];
  private ended = false;

  constructor(
    private readonly input: NodeJS.ReadableStream = process.stdin,
    private readonly output: NodeJS.WritableStream = process.stderr,
  ) {}

  async ask(question: string): Promise<string | undefined> {
    this.output.write(question);
    this.open();
    const queued = this.lines.shift();
    if (queued !== undefined) return queued;
    if (this.ended) return undefined;
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  close(): void {
    this.rl?.close();
  }

  private open(): void {
    if (this.rl) return;
    this.rl = createInterface({ input: this.input, terminal: false });
    this.rl.on('line', (line) => {
      const waiter = this.waiting.shift();
      if (waiter) waiter(line.trim());
      else this.lines.push(line.trim());
    });
    this.rl.on('close', () => {
      this.ended = true;
      for (const waiter of this.waiting.splice(0)) waiter(undefined);
    });
  }
}
