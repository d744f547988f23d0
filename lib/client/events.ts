// What a CeruleanClient tells its UI, as typed events. Every event is emitted after the change it reports is in the
// store, so a listener that re-reads the store sees it.
import { Emitter } from '../apns/emitter';
import type { ChatRecord, MessageRecord, MessageStatus, SecurityEvent } from '../store/types';

export type ConnectionState = 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface RegistrationEvent {
  /** 'registered' after register() or a renewal; 'failed' when a renewal failed; 'needs-sign-in' when only the
   *  user can fix it (the Apple ID password or the phone's SMS is needed again). */
  status: 'registered' | 'failed' | 'needs-sign-in';
  handles?: string[];
  /** When the ID certificates run out (unix ms). */
  expiresAt?: number;
  /** The error code of a failure. */
  error?: string;
}

export interface ClientEvents {
  /** A message was stored: received, sent from another own device, or queued here. */
  message: { message: MessageRecord; chat: ChatRecord };
  /** A stored message changed: a tapback, an edit or an unsend. */
  update: { message: MessageRecord };
  /** An own message moved on: sent, delivered, read or failed. */
  status: { uuid: string; status: MessageStatus; message: MessageRecord };
  typing: { chatId: string; handle: string; typing: boolean };
  /** A chat was created or renamed, or its members changed, by someone else. */
  chat: { chat: ChatRecord };
  /** A device appeared on an own handle or a contact's keys changed. */
  security: SecurityEvent;
  connection: { state: ConnectionState; error?: string; retryInMs?: number };
  registration: RegistrationEvent;
  /** Background failures worth showing (the operation is retried where that makes sense). */
  error: { code: string; message: string };
}

export type ClientEmitter = Emitter<ClientEvents>;

/** A throwing listener must not break the client; its failure becomes an `error` event (once, not recursively). */
export function createClientEmitter(): ClientEmitter {
  const emitter: ClientEmitter = new Emitter<ClientEvents>((e, type) => {
    if (type === 'error') return;
    emitter.emit('error', { code: 'listener-failed', message: `a ${String(type)} listener threw: ${describe(e)}` });
  });
  return emitter;
}

export function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
