// Unsent composer text per chat, in localStorage so a reload (or a crash) loses nothing. Drafts are message text:
// signing out must clear them along with the history (clearDrafts).
const PREFIX = 'cerulean.draft.';

export function readDraft(chatId: string): string {
  try {
    return localStorage.getItem(PREFIX + chatId) ?? '';
  } catch {
    return '';
  }
}

export function writeDraft(chatId: string, text: string): void {
  try {
    if (text === '') localStorage.removeItem(PREFIX + chatId);
    else localStorage.setItem(PREFIX + chatId, text);
  } catch {
    // Storage full or blocked: the draft lives only in the page.
  }
}

/** Removes every chat's draft. */
export function clearDrafts(): void {
  try {
    const keys: string[] = [];
    for (let i = 0; i < localStorage.length; i++) {
      const key = localStorage.key(i);
      if (key?.startsWith(PREFIX)) keys.push(key);
    }
    for (const key of keys) localStorage.removeItem(key);
  } catch {
    // Without storage there are no drafts to clear.
  }
}
