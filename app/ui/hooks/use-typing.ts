// Who is typing in a chat right now. A "started typing" that is never followed by a stop (the other side went
// away) expires on its own, and a message from someone ends their typing.
import { useEffect, useState } from 'react';
import { useClient } from '../../session/session';
import { handleId } from '../chats/handles';

/** Longer than any pause the sender's own idle timeout leaves between refreshes. */
const TYPING_EXPIRY_MS = 60_000;

export function useTyping(chatId: string): string[] {
  const client = useClient();
  const [typing, setTyping] = useState<string[]>([]);

  useEffect(() => {
    setTyping([]);
    const timers = new Map<string, ReturnType<typeof setTimeout>>();
    const stop = (handle: string) => {
      const id = handleId(handle);
      clearTimeout(timers.get(id));
      timers.delete(id);
      setTyping((list) => (list.some((h) => handleId(h) === id) ? list.filter((h) => handleId(h) !== id) : list));
    };
    const offs = [
      client.on('typing', (e) => {
        if (e.chatId !== chatId) return;
        if (!e.typing) return stop(e.handle);
        const id = handleId(e.handle);
        clearTimeout(timers.get(id));
        timers.set(id, setTimeout(() => stop(e.handle), TYPING_EXPIRY_MS));
        setTyping((list) => (list.some((h) => handleId(h) === id) ? list : [...list, e.handle]));
      }),
      client.on('message', (e) => {
        if (e.message.chatId === chatId && !e.message.fromMe) stop(e.message.sender);
      }),
    ];
    return () => {
      for (const off of offs) off();
      for (const t of timers.values()) clearTimeout(t);
    };
  }, [client, chatId]);

  return typing;
}
