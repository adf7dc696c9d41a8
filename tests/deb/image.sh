#!/usr/bin/env bash
# Builds (once) the Debian 12 guest that tests/deb/booted.sh boots under qemu: a debootstrap
# minbase rootfs with systemd as PID 1, Debian's cloud kernel and an initrd generated inside the
# rootfs, packed into an ext4 image. Cached; a second run only prints the paths.
#
#   tests/deb/image.sh DIR        writes DIR/root.img, DIR/vmlinuz, DIR/initrd.img
#
# DIR is keyed by the content of this script (tests/deb/booted.sh passes
# target/boot-test/image-<hash>), so changing the package list or the setup below builds a new
# image. Needs root, debootstrap and e2fsprogs; fetches from $DEBIAN_MIRROR
# (default http://deb.debian.org/debian).
set -euo pipefail

dir="${1:?usage: tests/deb/image.sh DIR}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# What the guest needs beyond minbase: systemd as init, udev (device units), dbus (systemctl
# talks to logind), a kernel + initramfs-tools (the initrd is made inside the rootfs), curl
# (/readyz, /metrics), sqlite3 (reads the buffer's schema version) and iproute2 (cuts the
# uplink to the CSE with an unreachable route).
# ca-certificates and procps: a gateway's base system has them (0.1.0 did not depend on them).
packages="systemd,systemd-sysv,udev,dbus,linux-image-cloud-amd64,initramfs-tools,curl,sqlite3,iproute2,ca-certificates,procps"

say() { printf '\033[1m[image]\033[0m %s\n' "$*"; }
die() { printf 'image.sh: error: %s\n' "$*" >&2; exit 1; }

if [ -f "$dir/root.img" ] && [ -f "$dir/vmlinuz" ] && [ -f "$dir/initrd.img" ]; then
  say "cached: $dir"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || die "building the guest image needs root (debootstrap, chroot)"
command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
command -v mke2fs >/dev/null || die "mke2fs is missing (apt-get install e2fsprogs)"

mkdir -p "$dir"
root="$dir/rootfs"
rm -rf "$root" "$dir/root.img.tmp"
start=$(date +%s)
say "debootstrap --variant=minbase bookworm (+ $packages) from $mirror"
if ! debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" >"$dir/debootstrap.log" 2>&1; then
  tail -n 30 "$dir/debootstrap.log" >&2
  die "debootstrap failed (full log: $dir/debootstrap.log)"
fi
say "debootstrap took $(($(date +%s) - start)) s"

# --- the guest's setup -------------------------------------------------------------------------
echo citygate-test >"$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 citygate-test\n' >"$root/etc/hosts"
# Root is /dev/vda, mounted read-write by the kernel (root=/dev/vda rw).
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$root/etc/fstab"
# qemu user networking: the guest is 10.0.2.15; 10.0.2.100 is forwarded to the host's CSE.
# Static, so boot does not wait for DHCP.
mkdir -p "$root/etc/systemd/network"
cat >"$root/etc/systemd/network/10-uplink.network" <<'EOF'
[Match]
Name=en* eth*
[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
EOF
# The test scenario: runs from the second disk once the system is up, writes to the second
# serial port (the host's log) and powers the guest off whatever happens.
cat >"$root/etc/systemd/system/citygate-boottest.service" <<'EOF'
[Unit]
Description=citygate install/upgrade/downgrade/purge scenario
After=multi-user.target
ConditionPathExists=/dev/vdb
SuccessAction=poweroff-force
FailureAction=poweroff-force
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'mkdir -p /mnt/boottest && mount -o ro /dev/vdb /mnt/boottest && exec /bin/bash /mnt/boottest/scenario.sh'
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS1
TimeoutStartSec=infinity
[Install]
WantedBy=multi-user.target
EOF
chroot "$root" systemctl enable -q systemd-networkd.service citygate-boottest.service
# Nothing else may write to the consoles or compete for the CPU during the test.
chroot "$root" systemctl mask -q serial-getty@ttyS0.service serial-getty@ttyS1.service \
  getty@tty1.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
  dpkg-db-backup.timer systemd-tmpfiles-clean.timer 2>/dev/null || true
# Keep the image small: no apt caches, docs or man pages.
rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"* \
  "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/locale"

cp "$(find "$root/boot" -name 'vmlinuz-*' | sort | tail -n1)" "$dir/vmlinuz"
cp "$(find "$root/boot" -name 'initrd.img-*' | sort | tail -n1)" "$dir/initrd.img"
size_mb=$(($(du -sm "$root" | cut -f1) + 256))
mke2fs -q -t ext4 -L citygate-root -d "$root" "$dir/root.img.tmp" "${size_mb}M"
mv "$dir/root.img.tmp" "$dir/root.img"
rm -rf "$root"
say "image ready in $(($(date +%s) - start)) s: $dir/root.img (${size_mb} MiB)"
