// Envelope command numbers (`c`, imessage.md §2). Names follow [BG] where it has one; "P" in the comments marks
// commands whose entries carry an encrypted payload.

export const Command = {
  /** JSON on com.apple.private.ids, server → device: re-register. */
  IdsReregister: 32,
  /** JSON control notice: the account's device list changed. */
  IdsDevicesChanged: 34,
  /** JSON control notice: the account's handles changed. */
  IdsHandlesChanged: 66,
  IdsError: 92,
  /** IDS HTTP request tunnelled over APNs (lookups). */
  HttpRequest: 96,
  HttpResponse: 97,
  /** P (except 1:1 typing start): text, tapbacks, replies, balloons, typing. */
  Message: 100,
  DeliveryReceipt: 101,
  ReadReceipt: 102,
  /** Cancels a "send later" by its `qI` ([RP]). */
  Unschedule: 103,
  /** P: MMCS pointer to the real payload of command `oC`. */
  AsyncMessage: 104,
  PlayedReceipt: 105,
  SavedReceipt: 106,
  ReflectedDeliveryReceipt: 107,
  /** Device → server certified-delivery receipt. */
  CertifiedDelivery: 109,
  /** P: `{uG}`, to own handle. */
  MarkUnread: 111,
  /** Focus "notify anyway" ([RP]). */
  NotifyAnyway: 113,
  /** P: edit or unsend (§3.5). */
  EditUnsend: 118,
  /** Unencrypted report that a peer could not process a message. */
  DeliveryFailure: 120,
  /** P: extension (sticker) update ([RP]). */
  ExtensionUpdate: 122,
  /** "My keys/devices changed, look me up again." */
  PeerCacheInvalidate: 130,
  /** P: Name & Photo share. */
  ShareProfile: 131,
  /** P: transcript background ([RP]). */
  TranscriptBackground: 138,
  /** P: SMS/MMS received by the phone, forwarded (SMS topic). */
  SmsReceived: 140,
  MmsReceived: 141,
  SmsForwardingCode: 142,
  /** P: Mac asks the phone to send an SMS/MMS (to own handle). */
  SmsReflected: 143,
  MmsReflected: 144,
  SmsForwardingToggled: 145,
  SmsSent: 146,
  SmsRead: 147,
  SmsFailed: 149,
  /** MMCS upload / download authorization; request and reply share the number, matched by `i`. */
  MmcsUpload: 150,
  MmcsDownload: 151,
  /** Offline-storage check: "deliver everything pending now". */
  FlushQueue: 160,
  /** P: settings sync to own handle. */
  SettingsSync: 180,
  DeleteSync: 181,
  UndeleteSync: 182,
  /** P: group rename / avatar / participants (§8). */
  GroupChange: 190,
  /** P: link-preview edit. */
  LinkPreviewEdit: 196,
  /** Quick relay ([RP]). */
  QuickRelay: 200,
  /** Server acknowledgement of a send, one per destination entry. */
  ServerAck: 255,
} as const;

export type CommandName = keyof typeof Command;

/** Envelope `v` on com.apple.madrid. */
export const ENVELOPE_VERSION = 8;
