import { Reader } from '../core/bytes.ts';
import { u16le, u64le, utf16le } from './le.ts';

/**
 * UEFI_IMAGE_LOAD_EVENT (TCG PC Client PFP 1.06, 10.2.3), the data of EV_EFI_BOOT_SERVICES_*
 * and EV_EFI_RUNTIME_SERVICES_DRIVER events:
 *   0  ImageLocationInMemory u64 | 8  ImageLengthInMemory u64 | 16  ImageLinkTimeAddress u64
 *  24  LengthOfDevicePath u64    | 32  DevicePath[LengthOfDevicePath] (EFI_DEVICE_PATH_PROTOCOL)
 *
 * The digest of these events is the PE Authenticode hash of the image, so the event data (where
 * the image was, which device path) is NOT covered by any digest: it is a hint for people only.
 */
export interface ImageLoadEvent {
  location: bigint;
  length: bigint;
  linkTimeAddress: bigint;
  devicePath: Uint8Array;
  /** The file path nodes of the device path ("\EFI\BOOT\BOOTX64.EFI"), when there are any. */
  filePath?: string;
}

export function parseImageLoadEvent(bytes: Uint8Array): ImageLoadEvent {
  const r = new Reader(bytes, { errorCode: 'eventlog.image_load_event_invalid', what: 'UEFI_IMAGE_LOAD_EVENT' });
  const location = u64le(r);
  const length = u64le(r);
  const linkTimeAddress = u64le(r);
  const pathLength = u64le(r);
  if (pathLength > BigInt(r.remaining)) r.fail(`device path of ${pathLength} bytes, ${r.remaining} left`);
  const devicePath = r.take(Number(pathLength));
  return { location, length, linkTimeAddress, devicePath, filePath: devicePathFile(devicePath) };
}

/**
 * Walk EFI_DEVICE_PATH_PROTOCOL nodes (UEFI 2.10, 10.3: Type u8, SubType u8, Length u16 incl.
 * the 4-byte header) and join the Media/File Path nodes (type 4, subtype 4, UTF-16 path).
 */
export function devicePathFile(path: Uint8Array): string | undefined {
  const r = new Reader(path, { errorCode: 'eventlog.device_path_invalid', what: 'device path' });
  const parts: string[] = [];
  try {
    while (r.remaining >= 4) {
      const type = r.u8();
      const subType = r.u8();
      const length = u16le(r);
      if (length < 4) return undefined;
      const body = r.take(length - 4);
      if (type === 0x7f && subType === 0xff) break;
      if (type === 0x04 && subType === 0x04) parts.push(utf16le(body));
    }
  } catch {
    return undefined; // a malformed path is only a missing hint, never a parse failure
  }
  return parts.length ? parts.join('\\').replace(/\\\\+/g, '\\') : undefined;
}
