/**
 * Names shared with stacker/atomfs (so their tools and ours read each other's images): the layer
 * media type `application/vnd.stacker.image.layer.squashfs+<compression>[+verity]` and the
 * descriptor annotation carrying the verity root hash.
 */
export const VERITY_ROOT_HASH_ANNOTATION = 'io.stackeroci.stacker.atomfs_verity_root_hash';
export const SQUASHFS_MEDIA_TYPE_BASE = 'application/vnd.stacker.image.layer.squashfs';

export function squashfsMediaType(compression: string, verity = true): string {
  return `${SQUASHFS_MEDIA_TYPE_BASE}+${compression}${verity ? '+verity' : ''}`;
}
