export interface SpinnerProps {
  /** Size and colour classes (default 'h-5 w-5 text-accent-ink'). */
  className?: string;
  /** Announced to screen readers; '' makes the spinner purely decorative (when the text beside it says it all). */
  label?: string;
}

export function Spinner({ label = 'Loading', className = 'h-5 w-5 text-accent-ink' }: SpinnerProps) {
  const svg = (
    <svg
      aria-hidden="true"
      viewBox="0 0 24 24"
      className={`animate-spin motion-reduce:animate-none ${className}`}
      fill="none"
    >
      <circle cx="12" cy="12" r="10" stroke="currentColor" strokeOpacity="0.25" strokeWidth="4" />
      <path d="M22 12a10 10 0 0 0-10-10" stroke="currentColor" strokeWidth="4" strokeLinecap="round" />
    </svg>
  );
  if (label === '') return svg;
  return (
    <span role="status" className="inline-flex items-center">
      {svg}
      <span className="sr-only">{label}</span>
    </span>
  );
}
