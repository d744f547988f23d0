// Placeholder until the PWA issue lands: it states what exists so far.
export default function Home() {
  return (
    <main className="mx-auto flex max-w-xl flex-col gap-4 p-8">
      <h1 className="text-3xl font-semibold text-sky-600">Cerulean</h1>
      <p>
        An iMessage-compatible client that runs in your browser and keeps every key on your device.
      </p>
      <p className="text-sm text-neutral-500">
        This build contains the protocol core only; onboarding and chats are on their way.
      </p>
    </main>
  );
}
