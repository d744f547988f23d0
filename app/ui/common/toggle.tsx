import { useId, type InputHTMLAttributes, type ReactNode } from 'react';

export interface ToggleProps extends Omit<InputHTMLAttributes<HTMLInputElement>, 'type' | 'role'> {
  label: ReactNode;
  description?: ReactNode;
}

/** An on/off setting: a checkbox with the switch role, drawn as a switch. */
export function Toggle({ label, description, id, className = '', ...rest }: ToggleProps) {
  const autoId = useId();
  const inputId = id ?? autoId;
  const descriptionId = description ? `${inputId}-description` : undefined;
  return (
    <div className={`flex items-start justify-between gap-4 ${className}`}>
      <div className="flex flex-col">
        <label htmlFor={inputId} className="text-sm font-medium">
          {label}
        </label>
        {description ? (
          <p id={descriptionId} className="text-xs text-neutral-600 dark:text-neutral-400">
            {description}
          </p>
        ) : null}
      </div>
      <input
        id={inputId}
        type="checkbox"
        role="switch"
        aria-describedby={descriptionId}
        className="relative mt-0.5 h-6 w-11 shrink-0 cursor-pointer appearance-none rounded-full bg-neutral-300 transition-colors before:absolute before:top-0.5 before:left-0.5 before:h-5 before:w-5 before:rounded-full before:bg-white before:shadow before:transition-transform checked:bg-accent checked:before:translate-x-5 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-accent disabled:cursor-not-allowed disabled:opacity-50 dark:bg-neutral-700"
        {...rest}
      />
    </div>
  );
}
