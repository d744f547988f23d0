'use client';
// The registered app: navigation, status and banners, then the panes. From `md` up the chat list stays on the left
// and the route's screen fills the right; below `md` one pane shows at a time.
import { usePushUpkeep } from '../../session/push';
import { ChatListPane } from '../chats/chat-list';
import { ConversationPane } from '../chats/conversation';
import { NewChatPane } from '../chats/new-chat';
import { ContactsPane } from '../contacts/contacts-pane';
import { SecurityAlerts } from '../security/security-alerts';
import { SecurityPane } from '../security/security-pane';
import { SettingsPane } from '../settings/settings-pane';
import { ConnectionStatus } from './connection-status';
import { MainNav } from './nav';
import { PaneBoundary } from './pane-boundary';
import { routeHref, useRoute, type Route } from './router';
import { SessionBanners } from './session-banners';

function DetailPane({ route }: { route: Route }) {
  switch (route.name) {
    case 'chat':
      // Keyed so a different chat starts with fresh state (draft, scroll, open menus).
      return <ConversationPane key={route.chatId} chatId={route.chatId} />;
    case 'new-chat':
      return <NewChatPane />;
    case 'contacts':
      return <ContactsPane />;
    case 'security':
      return <SecurityPane />;
    case 'settings':
      return <SettingsPane />;
    case 'chats':
      return (
        <div className="flex h-full items-center justify-center p-8 text-sm text-neutral-600 dark:text-neutral-400">
          Choose a conversation, or start a new one.
        </div>
      );
  }
}

export function AppShell() {
  const route = useRoute();
  // With push on, the watcher stays off the courier while this page holds the connection.
  usePushUpkeep();
  const listOnly = route.name === 'chats';
  return (
    <div className="flex h-dvh flex-col md:flex-row">
      <a
        href="#main-pane"
        className="sr-only focus:not-sr-only focus:absolute focus:top-2 focus:left-2 focus:z-50 focus:rounded-lg focus:bg-white focus:px-3 focus:py-2 focus:text-sm dark:focus:bg-neutral-900"
        onClick={(e) => {
          // The hash is the router's: move focus without navigating.
          e.preventDefault();
          document.getElementById('main-pane')?.focus();
        }}
      >
        Skip to content
      </a>
      <MainNav route={route} />
      <div className="flex min-h-0 min-w-0 flex-1 flex-col">
        <header className="flex items-center justify-between gap-3 border-b border-neutral-200 px-4 py-2 dark:border-neutral-800">
          <span className="text-sm font-semibold text-accent-ink">Cerulean</span>
          <ConnectionStatus />
        </header>
        <SessionBanners />
        <SecurityAlerts />
        <div className="flex min-h-0 flex-1">
          <div
            className={`min-h-0 w-full border-neutral-200 md:block md:w-80 md:shrink-0 md:border-r lg:w-96 dark:border-neutral-800 ${listOnly ? 'block' : 'hidden'}`}
          >
            <PaneBoundary>
              <ChatListPane />
            </PaneBoundary>
          </div>
          <main
            id="main-pane"
            tabIndex={-1}
            className={`min-h-0 min-w-0 flex-1 outline-none md:block ${listOnly ? 'hidden' : 'block'}`}
          >
            <PaneBoundary key={routeHref(route)}>
              <DetailPane route={route} />
            </PaneBoundary>
          </main>
        </div>
      </div>
    </div>
  );
}
