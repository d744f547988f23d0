'use client';
import { BackupSettings } from './backup-settings';
import { ConnectionSettings } from './connection-settings';
import { MessageSettings } from './message-settings';
import { PushSettings } from './push-settings';
import { SignOut } from './sign-out';

export function SettingsPane() {
  return (
    <section aria-labelledby="settings-title" className="flex h-full min-h-0 flex-col">
      <header className="border-b border-neutral-200 px-4 py-3 dark:border-neutral-800">
        <h2 id="settings-title" className="text-xl font-semibold">
          Settings
        </h2>
      </header>
      <div className="min-h-0 flex-1 overflow-y-auto">
        <div className="mx-auto flex max-w-2xl flex-col gap-4 p-4">
          <ConnectionSettings />
          <MessageSettings />
          <PushSettings />
          <BackupSettings />
          <SignOut />
        </div>
      </div>
    </section>
  );
}
