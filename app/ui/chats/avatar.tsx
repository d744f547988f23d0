// A round picture for a person or a chat: the contact's photo, else initials.

export interface AvatarProps {
  name: string;
  photo?: string | undefined;
  /** Tailwind size classes. */
  className?: string;
}

function initials(name: string): string {
  const words = name
    .replace(/@.*$/, '')
    .split(/[\s,]+/)
    .filter((w) => /\p{L}|\p{N}/u.test(w));
  const letters = words.slice(0, 2).map((w) => [...w.replace(/^[^\p{L}\p{N}]+/u, '')][0] ?? '');
  return letters.join('').toUpperCase() || '#';
}

export function Avatar({ name, photo, className = 'h-10 w-10 text-sm' }: AvatarProps) {
  if (photo) {
    return <img src={photo} alt="" className={`shrink-0 rounded-full object-cover ${className}`} />;
  }
  return (
    <span
      aria-hidden="true"
      className={`inline-flex shrink-0 items-center justify-center rounded-full bg-gradient-to-b from-neutral-400 to-neutral-500 font-semibold text-white dark:from-neutral-500 dark:to-neutral-600 ${className}`}
    >
      {initials(name)}
    </span>
  );
}
