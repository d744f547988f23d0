import { TextField } from '../common/text-field';

export interface SecondFactorStepProps {
  appleId: string;
  code: string;
  onCode(code: string): void;
  disabled: boolean;
  /** False once the code was used up: the next step is a new code. */
  codeRequired: boolean;
}

export function SecondFactorStep({ appleId, code, onCode, disabled, codeRequired }: SecondFactorStepProps) {
  return (
    <div className="flex flex-col gap-4">
      <p className="text-sm text-neutral-700 dark:text-neutral-300">
        A 6-digit code was sent to the devices signed in to <span className="font-medium">{appleId}</span>. Enter it
        here.
      </p>
      <TextField
        label="Verification code"
        value={code}
        // Codes are often pasted with spaces ("123 456").
        onChange={(e) => onCode(e.target.value.replace(/\D/g, '').slice(0, 6))}
        inputMode="numeric"
        autoComplete="one-time-code"
        pattern="\d{6}"
        maxLength={6}
        required={codeRequired}
        disabled={disabled}
        className="max-w-48"
        data-testid="onb-2fa-code"
      />
    </div>
  );
}
