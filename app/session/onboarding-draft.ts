// What the person typed during onboarding, minus secrets (passwords, codes, the relay code), kept in sessionStorage
// so a reload or a crash mid-way loses nothing they would have to look up again. Cleared once registered.
export type OnboardingStep = 'connection' | 'method' | 'second-factor' | 'sms';
export type OnboardingMethod = 'apple-id' | 'phone';

export interface OnboardingDraft {
  step: OnboardingStep;
  method: OnboardingMethod;
  appleId: string;
  phoneNumber: string;
  /** The SIM's carrier as MCC+MNC (e.g. 310260): where its REG-REQ gateway is looked up; the sandbox needs none. */
  mccMnc: string;
  /** The REG-REQ being waited on: the client keeps its request id in the store, so it stays valid over a reload. */
  sms?: { text: string; gateway?: string };
}

const DRAFT_KEY = 'cerulean.onboarding';

const emptyDraft: OnboardingDraft = { step: 'connection', method: 'apple-id', appleId: '', phoneNumber: '', mccMnc: '' };

export function loadOnboardingDraft(): OnboardingDraft {
  try {
    const raw: unknown = JSON.parse(sessionStorage.getItem(DRAFT_KEY) ?? 'null');
    if (typeof raw !== 'object' || raw === null) return emptyDraft;
    const r = raw as Record<string, unknown>;
    const sms = r.sms as Record<string, unknown> | undefined;
    const smsOk = typeof sms === 'object' && sms !== null && typeof sms.text === 'string';
    const step = r.step === 'method' || r.step === 'sms' ? r.step : 'connection';
    return {
      // A 2FA code cannot be asked for again without the password, which is not kept: back to the method step.
      step: r.step === 'second-factor' ? 'method' : step === 'sms' && !smsOk ? 'method' : step,
      method: r.method === 'phone' ? 'phone' : 'apple-id',
      appleId: typeof r.appleId === 'string' ? r.appleId : '',
      phoneNumber: typeof r.phoneNumber === 'string' ? r.phoneNumber : '',
      mccMnc: typeof r.mccMnc === 'string' ? r.mccMnc : '',
      ...(smsOk
        ? { sms: { text: sms.text as string, ...(typeof sms.gateway === 'string' ? { gateway: sms.gateway } : {}) } }
        : {}),
    };
  } catch {
    return emptyDraft;
  }
}

export function saveOnboardingDraft(draft: OnboardingDraft): void {
  try {
    sessionStorage.setItem(DRAFT_KEY, JSON.stringify(draft));
  } catch {
    // Only the reload convenience is lost.
  }
}

export function clearOnboardingDraft(): void {
  try {
    sessionStorage.removeItem(DRAFT_KEY);
  } catch {
    // Nothing to clear.
  }
}
