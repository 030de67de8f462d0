#!/bin/sh
# Assets for the real measured-boot test (test/measure/boot/real-boot.test.ts), idempotent:
#   .tools/boot/vmlinuz        the Debian cloud kernel (TPM driver built in), fetched with
#                              `apt-get download` and unpacked with `dpkg-deb -x` — never installed,
#                              so no initramfs hook runs on this machine;
#   .tools/boot/kernel.txt     the kernel package it came from;
#   .tools/boot/initrd.cpio    a busybox initramfs whose /init prints the TPM's PCRs (every bank), the
#                              binary BIOS event log and the IMA log to the serial console between
#                              markers, then powers off. Built reproducibly: fixed owner, mode and
#                              mtime, sorted entries (`cpio --reproducible`), so the same busybox
#                              gives the same bytes.
# Usage: sh scripts/boot-assets.sh [output-dir]   (default .tools/boot)
set -eu
cd "$(dirname "$0")/.."
out="${1:-.tools/boot}"
mkdir -p "$out"

# --- kernel -----------------------------------------------------------------------------------
resolve_kernel() {
  apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}
if ! [ -s "$out/vmlinuz" ]; then
  pkg=$(resolve_kernel)
  if [ -z "$pkg" ]; then
    # A fresh machine may have no package lists yet.
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
    pkg=$(resolve_kernel)
  fi
  [ -n "$pkg" ] || { echo "boot-assets: cannot resolve linux-image-cloud-amd64 from the apt lists" >&2; exit 3; }
  rm -rf "$out/download" && mkdir -p "$out/download"
  echo "boot-assets: fetching $pkg" >&2
  # As root, apt cannot drop to its _apt sandbox user for a download into this folder; say so
  # explicitly instead of letting it warn. Errors still surface.
  sandbox=""; [ "$(id -u)" -eq 0 ] && sandbox="-o APT::Sandbox::User=root"
  (cd "$out/download" && apt-get download -qq $sandbox "$pkg" >/dev/null)
  dpkg-deb -x "$out"/download/*.deb "$out/download/root"
  cp "$out"/download/root/boot/vmlinuz-* "$out/vmlinuz.partial"
  mv "$out/vmlinuz.partial" "$out/vmlinuz"
  echo "$pkg $(dpkg-deb -f "$out"/download/*.deb Version)" >"$out/kernel.txt"
  rm -rf "$out/download"
fi

# --- initramfs --------------------------------------------------------------------------------
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "boot-assets: $busybox missing (Debian package busybox-static)" >&2; exit 3; }
stamp="$(sha256sum "$busybox" "$0" | sha256sum | cut -c1-16)"
if ! [ -s "$out/initrd.cpio" ] || [ "$(cat "$out/initrd.stamp" 2>/dev/null)" != "$stamp" ]; then
  root="$out/initrd.root"
  rm -rf "$root" && mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys"
  cp "$busybox" "$root/bin/busybox"
  ln -s busybox "$root/bin/sh"
  cat >"$root/init" <<'EOF'
#!/bin/sh
# Sigil measured-boot probe: print what the TPM and the kernel hold, then power off.
B=/bin/busybox
$B mount -t devtmpfs dev /dev 2>/dev/null
$B mount -t proc proc /proc
$B mount -t sysfs sysfs /sys
$B mount -t securityfs securityfs /sys/kernel/security
exec >/dev/console 2>&1
echo "SIGIL-CMDLINE $($B cat /proc/cmdline)"
echo "SIGIL-PCRS-BEGIN"
for bank in /sys/class/tpm/tpm0/pcr-*; do
  for f in "$bank"/*; do echo "$($B basename "$bank") $($B basename "$f") $($B cat "$f")"; done
done
echo "SIGIL-PCRS-END"
echo "SIGIL-EVENTLOG-BEGIN"
$B base64 /sys/kernel/security/tpm0/binary_bios_measurements
echo "SIGIL-EVENTLOG-END"
echo "SIGIL-IMALOG-BEGIN"
[ -r /sys/kernel/security/ima/binary_runtime_measurements ] && $B base64 /sys/kernel/security/ima/binary_runtime_measurements
echo "SIGIL-IMALOG-END"
echo "SIGIL-DONE"
$B sync
$B poweroff -f
EOF
  chmod 0755 "$root/init"
  # Reproducible archive: every entry root-owned with mtime 0, in sorted order.
  find "$root" -exec touch -h -d @0 {} +
  (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --reproducible -R 0:0 --quiet) >"$out/initrd.cpio.partial"
  mv "$out/initrd.cpio.partial" "$out/initrd.cpio"
  rm -rf "$root"
  echo "$stamp" >"$out/initrd.stamp"
fi
