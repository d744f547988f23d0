// A minimal typed event emitter (the DOM's EventTarget and Node's EventEmitter differ, and both are untyped).
// A throwing listener must not break the emitter's owner, so its error is handed to `onListenerError`.

export type Listener<T> = (event: T) => void;

export class Emitter<Events extends object> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>();

  constructor(private readonly onListenerError: (error: unknown, event: keyof Events) => void) {}

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof Events>(type: K, listener: Listener<Events[K]>): () => void {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => void set.delete(listener as Listener<never>);
  }

  emit<K extends keyof Events>(type: K, event: Events[K]): void {
    for (const listener of [...(this.listeners.get(type) ?? [])]) {
      try {
        (listener as Listener<Events[K]>)(event);
      } catch (e) {
        this.onListenerError(e, type);
      }
    }
  }
}
