// "…" in a grey bubble while someone in the chat is typing.

export function TypingIndicator({ names }: { names: string[] }) {
  const who = names.length === 1 ? `${names[0]} is typing` : `${names.join(', ')} are typing`;
  return (
    <div data-testid="typing-indicator" className="flex items-center gap-2 px-3 pt-1">
      <span aria-hidden="true" className="flex items-center gap-1 rounded-2xl rounded-bl-md bg-neutral-200 px-3.5 py-3 dark:bg-neutral-800">
        {[0, 150, 300].map((delay) => (
          <span
            key={delay}
            style={{ animationDelay: `${delay}ms` }}
            className="h-2 w-2 animate-bounce rounded-full bg-neutral-500 motion-reduce:animate-none dark:bg-neutral-400"
          />
        ))}
      </span>
      <span className="text-xs text-neutral-600 dark:text-neutral-400">{who}</span>
    </div>
  );
}
