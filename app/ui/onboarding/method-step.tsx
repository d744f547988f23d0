import type { ClientMode } from '../../../lib/client/config';
import type { OnboardingMethod } from '../../session/onboarding-draft';
import { Choice } from '../common/choice';
import { TextField } from '../common/text-field';

export interface MethodFields {
  method: OnboardingMethod;
  appleId: string;
  password: string;
  phoneNumber: string;
  mccMnc: string;
  relayCode: string;
  relayUrl: string;
}

export interface MethodStepProps {
  value: MethodFields;
  onChange(patch: Partial<MethodFields>): void;
  mode: ClientMode;
  defaultRelayUrl: string;
  disabled: boolean;
}

export function MethodStep({ value, onChange, mode, defaultRelayUrl, disabled }: MethodStepProps) {
  return (
    <div className="flex flex-col gap-5">
      <fieldset className="flex flex-col gap-2" disabled={disabled}>
        <legend className="mb-1 text-sm font-medium text-neutral-700 dark:text-neutral-300">Sign in with</legend>
        <Choice
          name="onb-method"
          value="apple-id"
          checked={value.method === 'apple-id'}
          onChange={() => onChange({ method: 'apple-id' })}
          title="Apple ID"
          description="Your email address and password; a code from your trusted devices may follow."
          data-testid="onb-method-appleid"
        />
        <Choice
          name="onb-method"
          value="phone"
          checked={value.method === 'phone'}
          onChange={() => onChange({ method: 'phone' })}
          title="Phone number"
          description="Your phone sends one text message to prove the number is yours."
          data-testid="onb-method-phone"
        />
      </fieldset>

      {value.method === 'apple-id' ? (
        <div className="flex flex-col gap-4">
          <TextField
            label="Apple ID"
            value={value.appleId}
            onChange={(e) => onChange({ appleId: e.target.value })}
            inputMode="email"
            autoComplete="username"
            spellCheck={false}
            required
            disabled={disabled}
            data-testid="onb-apple-id"
          />
          <TextField
            label="Password"
            value={value.password}
            onChange={(e) => onChange({ password: e.target.value })}
            type="password"
            autoComplete="current-password"
            required
            disabled={disabled}
            data-testid="onb-password"
          />
        </div>
      ) : (
        <TextField
          label="Phone number"
          hint="With the country code, e.g. +1 555 010 0199. The text goes out from this phone."
          value={value.phoneNumber}
          onChange={(e) => onChange({ phoneNumber: e.target.value })}
          type="tel"
          autoComplete="tel"
          required
          disabled={disabled}
          data-testid="onb-phone-number"
        />
      )}
      {value.method === 'phone' ? (
        <TextField
          label={mode === 'apple' ? 'Carrier code (MCC-MNC)' : 'Carrier code (MCC-MNC, optional)'}
          hint={
            mode === 'apple'
              ? "Your SIM's mobile country and network code, e.g. 310260: it finds the number your phone texts."
              : "Leave empty for the sandbox's carrier, or enter one to look its gateway up in the sandbox's carrier list."
          }
          value={value.mccMnc}
          onChange={(e) => onChange({ mccMnc: e.target.value })}
          inputMode="numeric"
          pattern="[0-9]{5,6}"
          required={mode === 'apple'}
          disabled={disabled}
          data-testid="onb-mcc-mnc"
        />
      ) : null}

      <fieldset className="flex flex-col gap-4 rounded-xl border border-neutral-200 p-4 dark:border-neutral-800" disabled={disabled}>
        <legend className="px-1 text-sm font-medium text-neutral-700 dark:text-neutral-300">Registration relay</legend>
        <p className="text-xs text-neutral-600 dark:text-neutral-400">
          Registering needs validation data that only Apple hardware can make. A registration relay fetches it from a
          Mac or iPhone you set up as a provider; enter the code that provider shows.
          {mode === 'sandbox' ? ' In the sandbox, create a code on the admin page.' : ''}
        </p>
        <TextField
          label="Registration code"
          value={value.relayCode}
          onChange={(e) => onChange({ relayCode: e.target.value })}
          autoComplete="off"
          spellCheck={false}
          required
          data-testid="onb-relay-code"
        />
        <TextField
          label="Relay address (optional)"
          hint={`Leave empty for ${defaultRelayUrl}`}
          value={value.relayUrl}
          onChange={(e) => onChange({ relayUrl: e.target.value })}
          type="url"
          inputMode="url"
          placeholder={defaultRelayUrl}
          autoComplete="off"
          spellCheck={false}
          data-testid="onb-relay-url"
        />
      </fieldset>
    </div>
  );
}
