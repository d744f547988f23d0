// IDS control pushes (ids.md §7.4, §9 item 11; imessage.md §9, §10 item 9): JSON `{"c":N}` notifications on
// com.apple.private.ids. The sandbox sends `{"c":34}` ("the devices on your account changed, look your own handles
// up again") to a user's other devices whenever one of them registers, changes what peers see of it (keys, handles,
// sub-services), or deregisters; `{"c":32}` (re-register) and `{"c":66}` (handles changed) are offered as hooks.
import { equalBytes, toHex, utf8 } from '../../lib/codec/bytes';
import { Command } from '../../lib/imessage/commands';
import type { Log } from '../context';
import type { Courier } from '../courier/courier';
import type { RegistrationEvent, Registrations } from '../ids/registrations';

export const IDS_CONTROL_TOPIC = 'com.apple.private.ids';

export type ControlCommand = typeof Command.IdsReregister | typeof Command.IdsDevicesChanged | typeof Command.IdsHandlesChanged;

/** The exact bytes clients parse: `{"c":34}`. */
export function controlPayload(command: ControlCommand): Uint8Array {
  return utf8(JSON.stringify({ c: command }));
}

export class ControlPushes {
  private readonly unsubscribe: () => void;

  constructor(
    private readonly courier: Courier,
    private readonly registrations: Registrations,
    private readonly log: Log,
  ) {
    // Registrations calls listeners synchronously after the change is durable; pushing must not hold it up.
    this.unsubscribe = registrations.onChange((e) => void this.onChange(e));
  }

  /** Pushes `{"c":command}` to every device of `userId` on `service` except `except`; how many were accepted. */
  async toAccount(userId: string, service: string, command: ControlCommand, except?: Uint8Array): Promise<number> {
    const targets = this.registrations.accountTokens(userId, service).filter((t) => !except || !equalBytes(t, except));
    const accepted = await Promise.all(targets.map((t) => this.toDevice(t, command)));
    return accepted.filter(Boolean).length;
  }

  /** Pushes `{"c":command}` to one device, stored if it is offline; whether the courier took it. */
  async toDevice(token: Uint8Array, command: ControlCommand): Promise<boolean> {
    try {
      const r = await this.courier.deliver(token, IDS_CONTROL_TOPIC, controlPayload(command));
      this.log.info('madrid.control-push', { c: command, to: toHex(token.subarray(0, 8)), delivered: r.delivered, stored: r.stored, reason: r.reason });
      return r.delivered || r.stored;
    } catch (e) {
      this.log.error('madrid.control-push-failed', { c: command, to: toHex(token.subarray(0, 8)), error: e instanceof Error ? e.message : String(e) });
      return false;
    }
  }

  close(): void {
    this.unsubscribe();
  }

  private async onChange(e: RegistrationEvent): Promise<void> {
    const r = e.registration;
    const count = await this.toAccount(r.userId, r.service, Command.IdsDevicesChanged, r.pushToken);
    this.log.info('madrid.devices-changed', { kind: e.kind, device: toHex(r.pushToken.subarray(0, 8)), notified: count });
  }
}
