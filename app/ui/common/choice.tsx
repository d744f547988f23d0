import type { InputHTMLAttributes, ReactNode } from 'react';

export interface ChoiceProps extends Omit<InputHTMLAttributes<HTMLInputElement>, 'type' | 'title'> {
  title: ReactNode;
  description?: ReactNode;
}

/** One radio option drawn as a card; group several under a <fieldset> with the same `name`. */
export function Choice({ title, description, className = '', ...rest }: ChoiceProps) {
  return (
    <label
      className={`flex cursor-pointer items-start gap-3 rounded-xl border border-neutral-300 p-3 has-checked:border-accent has-checked:bg-accent/5 has-focus-visible:outline-2 has-focus-visible:outline-accent has-disabled:cursor-not-allowed has-disabled:opacity-60 dark:border-neutral-700 dark:has-checked:bg-accent/15 ${className}`}
    >
      <input type="radio" className="mt-1 accent-accent" {...rest} />
      <span className="flex flex-col">
        <span className="text-sm font-medium">{title}</span>
        {description ? <span className="text-xs text-neutral-600 dark:text-neutral-400">{description}</span> : null}
      </span>
    </label>
  );
}
