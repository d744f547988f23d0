import type { ReactNode } from 'react';
import { routeHref, type Route } from './router';

interface NavItem {
  route: Route;
  /** Routes that light this item up besides its own. */
  also?: Route['name'][];
  label: string;
  testId: string;
  icon: ReactNode;
}

const iconProps = {
  viewBox: '0 0 24 24',
  fill: 'none',
  stroke: 'currentColor',
  strokeWidth: 1.8,
  strokeLinecap: 'round' as const,
  strokeLinejoin: 'round' as const,
  className: 'h-6 w-6',
  'aria-hidden': true,
};

const ITEMS: NavItem[] = [
  {
    route: { name: 'chats' },
    also: ['chat'],
    label: 'Chats',
    testId: 'nav-chats',
    icon: (
      <svg {...iconProps}>
        <path d="M4 5h16v11H9l-5 4V5z" />
      </svg>
    ),
  },
  {
    route: { name: 'new-chat' },
    label: 'New',
    testId: 'nav-new',
    icon: (
      <svg {...iconProps}>
        <path d="M12 20h9M16.5 3.5a2.1 2.1 0 0 1 3 3L7 19l-4 1 1-4 12.5-12.5z" />
      </svg>
    ),
  },
  {
    route: { name: 'contacts' },
    label: 'Contacts',
    testId: 'nav-contacts',
    icon: (
      <svg {...iconProps}>
        <circle cx="12" cy="8" r="4" />
        <path d="M4 21a8 8 0 0 1 16 0" />
      </svg>
    ),
  },
  {
    route: { name: 'security' },
    label: 'Security',
    testId: 'nav-security',
    icon: (
      <svg {...iconProps}>
        <path d="M12 3l8 3v6c0 4.5-3.4 8.3-8 9-4.6-.7-8-4.5-8-9V6l8-3z" />
      </svg>
    ),
  },
  {
    route: { name: 'settings' },
    label: 'Settings',
    testId: 'nav-settings',
    icon: (
      <svg {...iconProps}>
        <circle cx="12" cy="12" r="3" />
        <path d="M19.4 15a1.7 1.7 0 0 0 .3 1.8l.1.1a2 2 0 1 1-2.8 2.8l-.1-.1a1.7 1.7 0 0 0-1.8-.3 1.7 1.7 0 0 0-1 1.5V21a2 2 0 1 1-4 0v-.1a1.7 1.7 0 0 0-1.1-1.5 1.7 1.7 0 0 0-1.8.3l-.1.1a2 2 0 1 1-2.8-2.8l.1-.1a1.7 1.7 0 0 0 .3-1.8 1.7 1.7 0 0 0-1.5-1H3a2 2 0 1 1 0-4h.1a1.7 1.7 0 0 0 1.5-1.1 1.7 1.7 0 0 0-.3-1.8l-.1-.1a2 2 0 1 1 2.8-2.8l.1.1a1.7 1.7 0 0 0 1.8.3H9a1.7 1.7 0 0 0 1-1.5V3a2 2 0 1 1 4 0v.1a1.7 1.7 0 0 0 1 1.5 1.7 1.7 0 0 0 1.8-.3l.1-.1a2 2 0 1 1 2.8 2.8l-.1.1a1.7 1.7 0 0 0-.3 1.8V9a1.7 1.7 0 0 0 1.5 1H21a2 2 0 1 1 0 4h-.1a1.7 1.7 0 0 0-1.5 1z" />
      </svg>
    ),
  },
];

/** The app's sections: a tab bar along the bottom on phones, a rail on the left from `md` up. */
export function MainNav({ route }: { route: Route }) {
  return (
    <nav
      aria-label="Main"
      className="order-last flex shrink-0 border-t border-neutral-200 bg-neutral-50 pb-[env(safe-area-inset-bottom)] md:order-first md:flex-col md:border-t-0 md:border-r md:pt-2 md:pb-0 dark:border-neutral-800 dark:bg-neutral-900"
    >
      <ul className="flex w-full justify-around md:flex-col md:justify-start md:gap-1">
        {ITEMS.map((item) => {
          const active = route.name === item.route.name || (item.also?.includes(route.name) ?? false);
          return (
            <li key={item.testId} className="flex-1 md:flex-none">
              <a
                href={routeHref(item.route)}
                data-testid={item.testId}
                aria-current={active ? 'page' : undefined}
                className="flex flex-col items-center gap-0.5 px-2 py-2 text-[11px] font-medium text-neutral-600 hover:text-neutral-900 focus-visible:outline-2 focus-visible:-outline-offset-2 focus-visible:outline-accent aria-[current=page]:text-accent-ink md:w-20 md:py-3 dark:text-neutral-400 dark:hover:text-neutral-100 dark:aria-[current=page]:text-sky-400"
              >
                {item.icon}
                <span>{item.label}</span>
              </a>
            </li>
          );
        })}
      </ul>
    </nav>
  );
}
