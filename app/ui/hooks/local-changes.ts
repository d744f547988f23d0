// Changes this page makes itself that the client reports with no event (marking a chat read, editing contacts,
// marking security entries seen, starting a chat): the acting component announces them here so every hook that
// shows the same data re-reads it.
export type LocalTopic = 'chats' | 'contacts' | 'security';

const listeners = new Map<LocalTopic, Set<() => void>>();

export function notifyChanged(topic: LocalTopic): void {
  for (const listener of [...(listeners.get(topic) ?? [])]) listener();
}

export function onChanged(topic: LocalTopic, listener: () => void): () => void {
  let set = listeners.get(topic);
  if (!set) listeners.set(topic, (set = new Set()));
  set.add(listener);
  return () => set.delete(listener);
}
