/**
 * Mutations for JSON file formats: half at the byte level (test/support/fuzz.ts: truncation,
 * flips, garbage — mostly broken JSON), half structural, which keeps the JSON valid and so reaches
 * the field checks: delete a field, swap a value for another type or an extreme value, edit a
 * string (hex digits, base64, PEM bodies), add unknown fields, duplicate or empty arrays.
 */
import { mutate, prng } from '../support/fuzz.ts';

const encoder = new TextEncoder();

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function randomValue(random: () => number): Json {
  const choices: (() => Json)[] = [
    () => null,
    () => true,
    () => -1,
    () => 0,
    () => 2 ** 53,
    () => 1.5,
    () => 0xffffffff + 1,
    () => '',
    () => 'x'.repeat(Math.floor(random() * 300)),
    () => '0x81000003',
    () => 'ff'.repeat(Math.floor(random() * 40)),
    () => [],
    () => ({}),
    () => ['a', 1],
    () => '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
  ];
  return choices[Math.floor(random() * choices.length)]();
}

function editString(value: string, random: () => number): string {
  if (value.length === 0) return 'a';
  const at = Math.floor(random() * value.length);
  switch (Math.floor(random() * 5)) {
    case 0:
      return value.slice(0, at) + '0123456789abcdefg+/=-'[Math.floor(random() * 21)] + value.slice(at + 1);
    case 1:
      return value.slice(0, at);
    case 2:
      return value + value.slice(at);
    case 3:
      return value.slice(0, at) + value.slice(at + 1);
    default:
      return value.toUpperCase();
  }
}

/** Every container and key in the tree, to pick one at random. */
function locations(root: Json): { parent: Json[] | { [key: string]: Json }; key: string | number }[] {
  const out: { parent: Json[] | { [key: string]: Json }; key: string | number }[] = [];
  const walk = (node: Json) => {
    if (Array.isArray(node)) node.forEach((child, i) => (out.push({ parent: node, key: i }), walk(child)));
    else if (node && typeof node === 'object') for (const key of Object.keys(node)) out.push({ parent: node, key }), walk(node[key]);
  };
  walk(root);
  return out;
}

export function mutateJson(document: unknown, random: () => number): Uint8Array {
  const copy = structuredClone(document) as Json;
  const rounds = 1 + Math.floor(random() * 3);
  for (let i = 0; i < rounds; i++) {
    const all = locations(copy);
    if (all.length === 0) break;
    const { parent, key } = all[Math.floor(random() * all.length)];
    const record = parent as Record<string | number, Json>;
    switch (Math.floor(random() * 5)) {
      case 0:
        if (Array.isArray(parent)) parent.splice(key as number, 1);
        else delete record[key];
        break;
      case 1:
        record[key] = randomValue(random);
        break;
      case 2:
        if (typeof record[key] === 'string') record[key] = editString(record[key] as string, random);
        else record[key] = randomValue(random);
        break;
      case 3:
        if (Array.isArray(parent)) parent.push(structuredClone(parent[key as number]));
        else record[`unknown${Math.floor(random() * 3)}`] = randomValue(random);
        break;
      default:
        if (typeof record[key] === 'number') record[key] = (record[key] as number) + (random() < 0.5 ? 1 : -1);
        else if (typeof record[key] === 'string') record[key] = editString(record[key] as string, random);
        break;
    }
  }
  return encoder.encode(JSON.stringify(copy));
}

/** `count` inputs: alternately byte-mutated text and structurally mutated JSON. */
export function* jsonMutations(document: unknown, count: number, seed: number): Generator<Uint8Array> {
  const random = prng(seed);
  const text = encoder.encode(JSON.stringify(document));
  for (let i = 0; i < count; i++) yield i % 2 === 0 ? mutate(text, random) : mutateJson(document, random);
}
