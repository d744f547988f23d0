'use client';
// Devices and security: the account's devices (watched by this device, not announced by the server), what changed,
// the registration's expiry, and security codes to compare with contacts.
import { useId } from 'react';
import { DevicesSection } from './devices-section';
import { EventsSection } from './events-section';
import { RegistrationSection } from './registration-section';
import { VerificationSection } from './verification-section';

export function SecurityPane() {
  const id = useId();
  return (
    <section aria-labelledby={`${id}-title`} className="flex h-full min-h-0 flex-col overflow-y-auto">
      <header className="border-b border-neutral-200 px-4 py-3 dark:border-neutral-800">
        <h2 id={`${id}-title`} className="text-xl font-semibold">
          Devices and security
        </h2>
      </header>
      <div className="flex max-w-3xl flex-col gap-8 p-4">
        <DevicesSection headingId={`${id}-devices`} />
        <EventsSection headingId={`${id}-events`} />
        <VerificationSection headingId={`${id}-verify`} />
        <RegistrationSection headingId={`${id}-registration`} />
      </div>
    </section>
  );
}
