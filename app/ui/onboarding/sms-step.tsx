import { useState } from 'react';
import type { ClientMode } from '../../../lib/client/config';
import { Button } from '../common/button';
import { TextArea } from '../common/text-area';

export interface SmsStepProps {
  sms: { text: string; gateway?: string };
  phoneNumber: string;
  regResp: string;
  onRegResp(text: string): void;
  mode: ClientMode;
  disabled: boolean;
  /** False once the reply was used up: the next step is a new text, not this reply. */
  replyRequired: boolean;
}

/** `sms:` opens the phone's messaging app with the text filled in (the body parameter is widely understood). */
export function smsHref(gateway: string, text: string): string {
  return `sms:${encodeURIComponent(gateway)}?body=${encodeURIComponent(text)}`;
}

export function SmsStep({ sms, phoneNumber, regResp, onRegResp, mode, disabled, replyRequired }: SmsStepProps) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(sms.text);
      setCopied(true);
    } catch {
      setCopied(false);
    }
  };
  return (
    <div className="flex flex-col gap-4">
      <ol className="flex list-decimal flex-col gap-2 pl-5 text-sm text-neutral-700 dark:text-neutral-300">
        <li>
          From the phone with the number <span className="font-medium">{phoneNumber || 'you entered'}</span>, send this
          text{sms.gateway ? (
            <>
              {' '}
              to <span className="font-medium">{sms.gateway}</span>
            </>
          ) : null}
          . Carrier rates may apply.
        </li>
        <li>Your carrier answers with a text starting with REG-RESP. Paste that whole answer below.</li>
      </ol>
      <div className="flex flex-col gap-2 rounded-xl bg-neutral-100 p-3 dark:bg-neutral-900">
        <span className="text-xs font-medium text-neutral-600 dark:text-neutral-400" id="onb-regreq-label">
          Text to send
        </span>
        <output
          aria-labelledby="onb-regreq-label"
          className="font-mono text-xs break-all select-all"
          data-testid="onb-regreq-text"
        >
          {sms.text}
        </output>
        <div className="flex flex-wrap gap-2">
          {sms.gateway ? (
            <a
              href={smsHref(sms.gateway, sms.text)}
              className="inline-flex items-center rounded-lg bg-accent px-4 py-2 text-sm font-medium text-white hover:bg-[#0070e0] focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-accent"
              data-testid="onb-sms-link"
            >
              Open in Messages
            </a>
          ) : null}
          <Button variant="secondary" onClick={() => void copy()}>
            {copied ? 'Copied' : 'Copy text'}
          </Button>
        </div>
        {mode === 'sandbox' ? (
          <p className="text-xs text-neutral-600 dark:text-neutral-400">
            Sandbox: “send” the text from the phone number on the admin page (SMS) and paste its reply.
          </p>
        ) : null}
      </div>
      <TextArea
        label="The reply (REG-RESP…)"
        value={regResp}
        onChange={(e) => onRegResp(e.target.value)}
        placeholder="REG-RESP?v=3;r=…;n=…;s=…"
        spellCheck={false}
        autoComplete="off"
        rows={3}
        required={replyRequired}
        disabled={disabled}
        data-testid="onb-regresp"
      />
    </div>
  );
}
