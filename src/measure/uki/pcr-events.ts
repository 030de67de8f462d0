import { utf8 } from '../../core/bytes.ts';
import { digest, HASH_SIZES, type HashName } from '../../core/hash.ts';

/**
 * Predicted PCR events and their replay: PCR := H(PCR || digest), from all zeros (PCRs 0-16 start
 * at zero; TCG PC Client Platform Firmware Profile 3.3.4). One event carries one digest per bank,
 * because what a bank records depends on the bank (an Authenticode hash per algorithm).
 */

export interface PredictedEvent {
  pcr: number;
  /** TCG event type name as it appears in the log (EV_IPL, EV_EFI_ACTION, ...). */
  type: string;
  /** What the event is, in words (section name, "Linux initrd", ...). */
  description: string;
  /** Who performs the measurement. */
  by: 'firmware' | 'systemd-stub' | 'linux-efi-stub' | 'systemd-pcrphase';
  digests: Partial<Record<HashName, Uint8Array>>;
}

/** EDK2 Tcg2Dxe's EV_EFI_ACTION before the first boot option runs (PFP 10.4.4). */
export const CALLING_EFI_APPLICATION = 'Calling EFI Application from Boot Option';

export async function digestsOf(banks: readonly HashName[], ...parts: Uint8Array[]): Promise<Partial<Record<HashName, Uint8Array>>> {
  const out: Partial<Record<HashName, Uint8Array>> = {};
  for (const bank of banks) out[bank] = await digest(bank, ...parts);
  return out;
}

export async function actionEvent(banks: readonly HashName[], pcr: number, text: string): Promise<PredictedEvent> {
  return { pcr, type: 'EV_EFI_ACTION', description: text, by: 'firmware', digests: await digestsOf(banks, utf8.encode(text)) };
}

/** EV_SEPARATOR with the 4-byte value 0 (PFP 3.3.2: separator data is 00000000 when no error). */
export async function separatorEvent(banks: readonly HashName[], pcr: number): Promise<PredictedEvent> {
  return { pcr, type: 'EV_SEPARATOR', description: 'separator', by: 'firmware', digests: await digestsOf(banks, new Uint8Array(4)) };
}

export async function replayEvents(bank: HashName, events: readonly PredictedEvent[], pcr: number): Promise<Uint8Array> {
  let value: Uint8Array = new Uint8Array(HASH_SIZES[bank]);
  for (const event of events) {
    if (event.pcr !== pcr) continue;
    const measured = event.digests[bank];
    if (!measured) continue;
    value = await digest(bank, value, measured);
  }
  return value;
}
