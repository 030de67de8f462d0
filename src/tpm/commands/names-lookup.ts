import type { TpmClient } from '../client.ts';
import { readPublic } from './object.ts';
import { nvReadPublic } from './nv.ts';

/** Used by the client when a session needs a name the caller did not supply. */
export async function readPublicName(client: TpmClient, handle: number): Promise<Uint8Array> {
  return (await client.run(readPublic(handle))).name;
}

export async function nvReadPublicName(client: TpmClient, handle: number): Promise<Uint8Array> {
  return (await client.run(nvReadPublic(handle))).nvName;
}
