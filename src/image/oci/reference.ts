/**
 * Image references: `registry[:port]/repository[:tag][@digest]`, with the grammar of the
 * distribution spec (repository path components, tag `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`).
 * The registry part is required: Sigil never guesses a default registry.
 */
import { SigilError } from '../../core/errors.ts';
import { isDigest } from './digest.ts';

export interface ImageReference {
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const REGISTRY = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

function invalid(ref: string, why: string): never {
  throw new SigilError('oci.reference_invalid', `"${ref}" is not an image reference: ${why}`, { ref });
}

export function checkRepository(repository: string): string {
  if (repository.length === 0 || repository.length > 255 || !repository.split('/').every((c) => COMPONENT.test(c))) {
    throw new SigilError('oci.reference_invalid', `"${repository}" is not a repository name`, { repository });
  }
  return repository;
}

export function checkTag(tag: string): string {
  if (!TAG.test(tag)) throw new SigilError('oci.tag_invalid', `"${tag}" is not a valid tag`, { tag });
  return tag;
}

export function parseReference(ref: string): ImageReference {
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    if (!isDigest(digest)) invalid(ref, 'the part after @ is not a digest');
    rest = rest.slice(0, at);
  }
  const slash = rest.indexOf('/');
  if (slash <= 0) invalid(ref, 'no registry (write host[:port]/repository[:tag])');
  const registry = rest.slice(0, slash);
  if (!REGISTRY.test(registry)) invalid(ref, `"${registry}" is not a registry host`);
  let path = rest.slice(slash + 1);
  let tag: string | undefined;
  const colon = path.lastIndexOf(':');
  if (colon >= 0) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (!TAG.test(tag)) invalid(ref, `"${tag}" is not a valid tag`);
  }
  if (!path || !path.split('/').every((c) => COMPONENT.test(c)) || path.length > 255) invalid(ref, `"${path}" is not a repository name`);
  return { registry, repository: path, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

export function formatReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}
