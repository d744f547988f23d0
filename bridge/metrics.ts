// Counters and gauges for /metrics, rendered by hand in the Prometheus text exposition format (version 0.0.4).
// Every label value comes from a fixed list, so series are stable (zeros included) and need no escaping.
import { CLOSE_REASONS, type CloseReason, REFUSAL_REASONS, type RefusalReason } from './close-codes';

export type Direction = 'client_to_destination' | 'destination_to_client';
/** Which reader the bridge paused: 'destination' = it stopped reading the TCP socket, 'client' = the WebSocket. */
export type PausedSide = 'destination' | 'client';

export interface MetricsSnapshot {
  tunnelsOpened: number;
  tunnelsRefused: Record<RefusalReason, number>;
  tunnelsClosed: Record<CloseReason, number>;
  bytes: Record<Direction, number>;
  backpressurePauses: Record<PausedSide, number>;
  tunnelsOpen: number;
  tunnelsConnecting: number;
}

function zeros<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
}

export class BridgeMetrics {
  private tunnelsOpened = 0;
  private readonly refused = zeros(REFUSAL_REASONS);
  private readonly closed = zeros(CLOSE_REASONS);
  private readonly bytes: Record<Direction, number> = { client_to_destination: 0, destination_to_client: 0 };
  private readonly pauses: Record<PausedSide, number> = { destination: 0, client: 0 };
  tunnelsOpen = 0;
  tunnelsConnecting = 0;

  opened(): void {
    this.tunnelsOpened++;
  }

  refusedFor(reason: RefusalReason): void {
    this.refused[reason]++;
  }

  closedFor(reason: CloseReason): void {
    this.closed[reason]++;
  }

  addBytes(direction: Direction, n: number): void {
    this.bytes[direction] += n;
  }

  paused(side: PausedSide): void {
    this.pauses[side]++;
  }

  snapshot(): MetricsSnapshot {
    return {
      tunnelsOpened: this.tunnelsOpened,
      tunnelsRefused: { ...this.refused },
      tunnelsClosed: { ...this.closed },
      bytes: { ...this.bytes },
      backpressurePauses: { ...this.pauses },
      tunnelsOpen: this.tunnelsOpen,
      tunnelsConnecting: this.tunnelsConnecting,
    };
  }

  /** The Prometheus text format. */
  render(): string {
    const lines: string[] = [];
    const family = (name: string, type: 'counter' | 'gauge', help: string, series: Array<[string, number]>) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of series) lines.push(`${name}${labels} ${value}`);
    };
    const labelled = (label: string, values: Record<string, number>): Array<[string, number]> =>
      Object.entries(values).map(([k, v]) => [`{${label}="${k}"}`, v]);

    family('cerulean_bridge_tunnels_opened_total', 'counter', 'Tunnels connected to their destination.', [
      ['', this.tunnelsOpened],
    ]);
    family(
      'cerulean_bridge_tunnels_refused_total',
      'counter',
      'Tunnel requests refused, by reason.',
      labelled('reason', this.refused),
    );
    family(
      'cerulean_bridge_tunnels_closed_total',
      'counter',
      'Open tunnels that ended, by what ended them.',
      labelled('reason', this.closed),
    );
    family(
      'cerulean_bridge_bytes_total',
      'counter',
      'Bytes forwarded, by direction.',
      labelled('direction', this.bytes),
    );
    family(
      'cerulean_bridge_backpressure_pauses_total',
      'counter',
      'Times the bridge stopped reading one side because the other side was not keeping up.',
      labelled('side', this.pauses),
    );
    family('cerulean_bridge_tunnels_open', 'gauge', 'Tunnels currently open.', [['', this.tunnelsOpen]]);
    family('cerulean_bridge_tunnels_connecting', 'gauge', 'Tunnel requests waiting for DNS or TCP connect.', [
      ['', this.tunnelsConnecting],
    ]);
    return `${lines.join('\n')}\n`;
  }
}
