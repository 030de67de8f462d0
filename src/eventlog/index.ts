/**
 * Event logs: TCG PC Client logs (SHA-1 legacy and crypto-agile) with replay, comparison with
 * quoted PCRs and a structured boot state; the IMA measurement list with PCR 10 replay; and the
 * quirk registry that names every deviation Sigil reads past. Isomorphic (WebCrypto only).
 */
export { parseTcgEventLog, type TcgEventLog, type TcgEvent, type EventDigest, type TcgLogFormat, MAX_EVENT_SIZE, MAX_PCR_INDEX } from './tcg-log.ts';
export { writeCryptoAgileLog, writeLegacyLog, eventDigests, type EventToWrite } from './tcg-writer.ts';
export { EV, eventTypeName, eventTypeFromName } from './event-types.ts';
export { parseSpecIdEvent, startupLocality, type SpecIdEvent, type DigestSize } from './spec-id.ts';
export { replayTcgLog, compareWithQuoted, banksToJson, initialPcrValue, extend, type TcgReplay, type PcrBanks, type PcrValues, type PcrComparison, type ReplayComparison } from './replay.ts';
export { extractBootState, defaultBank, type BootState, type BootStateOptions, type KernelCommandLine, type Initrd } from './boot-state.ts';
export type { FirmwareState, SignatureDatabase, Authority } from './firmware-state.ts';
export type { GrubState, GrubFile } from './grub.ts';
export { SYSTEMD_TAGS, LINUX_TAGS, type SystemdState, type UkiSection, type MeasuredItem, type LinuxStubState } from './systemd.ts';
export { QUIRKS, quirkDefinition, isQuirkId, type QuirkId, type QuirkDefinition, type QuirkOptions, type AppliedQuirk } from './quirks.ts';
export { parseImaLog, encodeImaBinary, encodeImaAscii, type ImaLog, type ImaEntry, type ImaParseOptions } from './ima/ima-log.ts';
export { verifyImaAgainstQuote, verifyTemplateHashes, replayIma, bootAggregate, type ImaVerification, type ImaFile } from './ima/ima-replay.ts';
