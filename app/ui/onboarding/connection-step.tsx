import type { ClientMode } from '../../../lib/client/config';
import { Choice } from '../common/choice';
import { TextArea } from '../common/text-area';
import { TextField } from '../common/text-field';

export interface ConnectionFields {
  bridgeUrl: string;
  bridgeToken: string;
  mode: ClientMode;
  appleRootsPem: string;
  deviceName: string;
}

export interface ConnectionStepProps {
  value: ConnectionFields;
  onChange(patch: Partial<ConnectionFields>): void;
  disabled: boolean;
  /** A registered device cannot switch services without signing out. */
  modeLocked: boolean;
}

export function ConnectionStep({ value, onChange, disabled, modeLocked }: ConnectionStepProps) {
  return (
    <div className="flex flex-col gap-5">
      <TextField
        label="Bridge address"
        hint="The bridge relays encrypted connections between this browser and the service. npm start runs one on port 8787."
        value={value.bridgeUrl}
        onChange={(e) => onChange({ bridgeUrl: e.target.value })}
        placeholder="ws://localhost:8787"
        inputMode="url"
        autoComplete="off"
        spellCheck={false}
        required
        disabled={disabled}
        data-testid="onb-bridge-url"
      />
      <TextField
        label="Bridge access token (optional)"
        hint="Only if the bridge's operator gave you one."
        value={value.bridgeToken}
        onChange={(e) => onChange({ bridgeToken: e.target.value })}
        type="password"
        autoComplete="off"
        spellCheck={false}
        disabled={disabled}
        data-testid="onb-bridge-token"
      />
      <fieldset className="flex flex-col gap-2" disabled={disabled || modeLocked}>
        <legend className="mb-1 text-sm font-medium text-neutral-700 dark:text-neutral-300">Service</legend>
        <Choice
          name="onb-mode"
          value="sandbox"
          checked={value.mode === 'sandbox'}
          onChange={() => onChange({ mode: 'sandbox' })}
          title="Local sandbox"
          description="A stand-in for Apple's servers on your machine, for trying Cerulean out."
          data-testid="onb-mode-sandbox"
        />
        <Choice
          name="onb-mode"
          value="apple"
          checked={value.mode === 'apple'}
          onChange={() => onChange({ mode: 'apple' })}
          title="Apple iMessage"
          description="Apple's real servers. Needs a bridge that allows them and Apple's root certificates."
          data-testid="onb-mode-apple"
        />
        {modeLocked ? (
          <p className="text-xs text-neutral-600 dark:text-neutral-400">
            This device is registered with this service. To change it, sign out in Settings first.
          </p>
        ) : null}
      </fieldset>
      {value.mode === 'apple' ? (
        <TextArea
          label="Apple's root certificates (PEM)"
          hint="Paste the root certificates that Apple's servers chain to (-----BEGIN CERTIFICATE----- …). Only servers with these roots are trusted; the bridge never sees inside the connection."
          value={value.appleRootsPem}
          onChange={(e) => onChange({ appleRootsPem: e.target.value })}
          spellCheck={false}
          rows={5}
          required
          disabled={disabled}
          data-testid="onb-apple-roots"
        />
      ) : null}
      <TextField
        label="Device name"
        hint="How this browser appears in your account's device list."
        value={value.deviceName}
        onChange={(e) => onChange({ deviceName: e.target.value })}
        required
        maxLength={64}
        disabled={disabled}
        data-testid="onb-device-name"
      />
    </div>
  );
}
