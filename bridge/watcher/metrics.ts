// Counters, gauges and one histogram for the watcher's /metrics, in the Prometheus text format (0.0.4). Label values
// come from fixed lists, so every series exists from the start (zeros included) and nothing needs escaping. No
// enrollment ids, tokens or endpoints ever become labels.
import type { WatchState } from './device-watch';

export const WATCH_STATES: readonly WatchState[] = ['connecting', 'watching', 'woken', 'paused', 'stopped'];
export const ENROLL_RESULTS = ['created', 'replaced', 'invalid', 'refused', 'wrong-shard', 'rate-limited', 'full'] as const;
export const PUSH_RESULTS = ['sent', 'gone', 'rejected', 'failed'] as const;
export const RESUME_REASONS = ['drained', 'timeout'] as const;
export type EnrollResult = (typeof ENROLL_RESULTS)[number];
export type PushResult = (typeof PUSH_RESULTS)[number];
export type ResumeReason = (typeof RESUME_REASONS)[number];

/** Seconds from the courier's notification to the push service's answer. */
const WAKE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

function zeros<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
}

export interface WatcherMetricsSnapshot {
  enrollments: Record<WatchState, number>;
  enrollRequests: Record<EnrollResult, number>;
  wakes: number;
  pushes: Record<PushResult, number>;
  resumes: Record<ResumeReason, number>;
  courierConnects: number;
  courierDisconnects: number;
  unenrolled: number;
}

export class WatcherMetrics {
  private readonly enrollRequests = zeros(ENROLL_RESULTS);
  private readonly pushes = zeros(PUSH_RESULTS);
  private readonly resumes = zeros(RESUME_REASONS);
  private readonly wakeBuckets = new Array<number>(WAKE_BUCKETS.length).fill(0);
  private wakeSum = 0;
  private wakeCount = 0;
  wakes = 0;
  courierConnects = 0;
  courierDisconnects = 0;
  unenrolled = 0;

  /** The states of the enrollments held now, read at render time. */
  constructor(private readonly states: () => Iterable<WatchState>) {}

  enrolled(result: EnrollResult): void {
    this.enrollRequests[result]++;
  }

  pushed(result: PushResult): void {
    this.pushes[result]++;
  }

  resumed(reason: ResumeReason): void {
    this.resumes[reason]++;
  }

  wakeLatency(seconds: number): void {
    this.wakeSum += seconds;
    this.wakeCount++;
    WAKE_BUCKETS.forEach((le, i) => {
      if (seconds <= le) this.wakeBuckets[i]!++;
    });
  }

  private stateCounts(): Record<WatchState, number> {
    const counts = zeros(WATCH_STATES);
    for (const s of this.states()) counts[s]++;
    return counts;
  }

  snapshot(): WatcherMetricsSnapshot {
    return {
      enrollments: this.stateCounts(),
      enrollRequests: { ...this.enrollRequests },
      wakes: this.wakes,
      pushes: { ...this.pushes },
      resumes: { ...this.resumes },
      courierConnects: this.courierConnects,
      courierDisconnects: this.courierDisconnects,
      unenrolled: this.unenrolled,
    };
  }

  render(): string {
    const lines: string[] = [];
    const family = (name: string, type: string, help: string, series: Array<[string, number]>) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of series) lines.push(`${name}${labels} ${value}`);
    };
    const labelled = (label: string, values: Record<string, number>): Array<[string, number]> =>
      Object.entries(values).map(([k, v]) => [`{${label}="${k}"}`, v]);

    family('cerulean_watcher_enrollments', 'gauge', 'Enrollments held, by state.', labelled('state', this.stateCounts()));
    family('cerulean_watcher_enroll_requests_total', 'counter', 'Enrollment requests, by result.', labelled('result', this.enrollRequests));
    family('cerulean_watcher_unenrolled_total', 'counter', 'Enrollments deleted (by the device, or a dead subscription).', [['', this.unenrolled]]);
    family('cerulean_watcher_wakes_total', 'counter', 'Courier notifications that woke a device.', [['', this.wakes]]);
    family('cerulean_watcher_webpush_total', 'counter', 'Web Push requests, by result.', labelled('result', this.pushes));
    family('cerulean_watcher_resumes_total', 'counter', 'Returns to watching after a wake-up or pause, by cause.', labelled('reason', this.resumes));
    family('cerulean_watcher_courier_connects_total', 'counter', 'Courier connections established.', [['', this.courierConnects]]);
    family('cerulean_watcher_courier_disconnects_total', 'counter', 'Courier connections lost (not counting the watcher leaving on purpose).', [
      ['', this.courierDisconnects],
    ]);
    lines.push(
      '# HELP cerulean_watcher_wake_seconds From a courier notification to the push service accepting the wake-up.',
      '# TYPE cerulean_watcher_wake_seconds histogram',
    );
    WAKE_BUCKETS.forEach((le, i) => lines.push(`cerulean_watcher_wake_seconds_bucket{le="${le}"} ${this.wakeBuckets[i]}`));
    lines.push(
      `cerulean_watcher_wake_seconds_bucket{le="+Inf"} ${this.wakeCount}`,
      `cerulean_watcher_wake_seconds_sum ${this.wakeSum}`,
      `cerulean_watcher_wake_seconds_count ${this.wakeCount}`,
    );
    return `${lines.join('\n')}\n`;
  }
}
