// Hash routing: the app is one static page, so routes live in location.hash. That keeps deep links (from
// notifications) working from any static host and offline, with no server rewrites.
import { useMemo, useSyncExternalStore } from 'react';

export type Route =
  | { name: 'chats' }
  | { name: 'chat'; chatId: string }
  | { name: 'new-chat' }
  | { name: 'contacts' }
  | { name: 'security' }
  | { name: 'settings' };

const CHATS: Route = { name: 'chats' };

/** '#/chat/<id>' and friends → a Route; anything unknown (or a malformed id) → the chat list. */
export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '').replace(/^\/+/, '').replace(/\/+$/, '');
  const [head, ...rest] = path.split('/');
  switch (head) {
    case 'chat': {
      if (rest.length !== 1 || !rest[0]) return CHATS;
      try {
        return { name: 'chat', chatId: decodeURIComponent(rest[0]) };
      } catch {
        return CHATS;
      }
    }
    case 'new':
      return rest.length === 0 ? { name: 'new-chat' } : CHATS;
    case 'contacts':
      return rest.length === 0 ? { name: 'contacts' } : CHATS;
    case 'security':
      return rest.length === 0 ? { name: 'security' } : CHATS;
    case 'settings':
      return rest.length === 0 ? { name: 'settings' } : CHATS;
    default:
      return CHATS;
  }
}

export function routeHref(route: Route): string {
  switch (route.name) {
    case 'chats':
      return '#/';
    case 'chat':
      return `#/chat/${encodeURIComponent(route.chatId)}`;
    case 'new-chat':
      return '#/new';
    case 'contacts':
      return '#/contacts';
    case 'security':
      return '#/security';
    case 'settings':
      return '#/settings';
  }
}

export function navigate(route: Route): void {
  window.location.hash = routeHref(route);
}

function subscribe(onChange: () => void): () => void {
  window.addEventListener('hashchange', onChange);
  return () => window.removeEventListener('hashchange', onChange);
}

// The snapshot is the raw hash (a string, stable between renders); parsing happens in the hook.
const readHash = () => window.location.hash;
const serverHash = () => '';

/** The current route; re-renders on hashchange. */
export function useRoute(): Route {
  const hash = useSyncExternalStore(subscribe, readHash, serverHash);
  return useMemo(() => parseRoute(hash), [hash]);
}
