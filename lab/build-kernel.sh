#!/usr/bin/env bash
# lab/build-kernel.sh: the hardware lab's kernel (design §6), cached in
#   $CALLBOX_CACHE/lab/kernel-<hash>/  (and the link $CALLBOX_CACHE/lab/kernel)
#     vmlinuz      Debian bookworm's linux-image-<abi>-amd64, unchanged
#     vmlinux      the same kernel uncompressed (booted through its PVH entry: faster)
#     initrd.img   busybox-static initramfs: virtio + ext4 modules, mounts /dev/vda as /
#                  and /dev/vdb (modules.img) at /usr/lib/modules, then runs systemd
#     modules.img  ext4 image of /lib/modules/<kver>: Debian's modules plus gpio-sim and
#                  vkms (built out of tree here, in updates/), depmod run
#     kver, info   kernel release; versions, sizes and timings of the build
# Nothing is installed on the host: the packages are fetched with `apt-get download`
# (a private apt, lab/lib.sh) and unpacked with dpkg -x. The hash covers this script,
# lab/lib.sh, lab/initramfs/, the package versions, busybox and the compiler.
# Prints the step's directory on stdout.
# Env: LAB_KERNEL_ABI=6.1.0-NN pins the kernel; LAB_REBUILD=1; LAB_OFFLINE=1.
set -euo pipefail
# shellcheck source=lab/lib.sh
. "$(dirname "$0")/lib.sh"

for tool in dpkg-deb depmod mkfs.ext4 busybox gcc-12 make xz readelf; do
  command -v "$tool" >/dev/null || lab_die "$tool missing (host packages: see lab/README.md)"
done
[ -x /bin/busybox ] && file_busybox=/bin/busybox || file_busybox=$(command -v busybox)
# The initramfs needs a static busybox.
if ldd "$file_busybox" >/dev/null 2>&1; then lab_die "$file_busybox is dynamic: install busybox-static"; fi

t_start=$(lab_now)
lab_apt_update
# Resolving costs a few apt-cache runs: remembered until the package lists change.
memo="$LAB_APT_DIR/kernel-${LAB_KERNEL_ABI:-current}"
lists_id=$(stat -c %Y "$LAB_APT_DIR/updated")
pkgs=()
if [ -f "$memo" ] && [ "$(head -1 "$memo")" = "$lists_id" ]; then
  mapfile -t pkgs < <(tail -n +2 "$memo")
fi
if [ ${#pkgs[@]} -ne 5 ]; then
  abi=${LAB_KERNEL_ABI:-}
  if [ -z "$abi" ]; then
    abi=$(lab_apt apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: linux-image-\(.*\)-amd64$/\1/p' | head -1)
    [ -n "$abi" ] || lab_die "cannot resolve linux-image-amd64 in $LAB_SUITE"
  fi
  ver=$(lab_apt_version "linux-image-$abi-amd64")
  if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then lab_die "linux-image-$abi-amd64 not in $LAB_SUITE"; fi
  series=${abi%.*}   # 6.1.0-NN -> kbuild/source series 6.1
  pkgs=(
    "linux-image-$abi-amd64=$ver"
    "linux-headers-$abi-amd64=$ver"
    "linux-headers-$abi-common=$ver"
    "linux-kbuild-$series=$ver"
    "linux-source-$series=$ver"
  )
  lab_apt apt-cache show "${pkgs[@]}" >/dev/null 2>&1 ||
    lab_die "not all of ${pkgs[*]} are in $LAB_SUITE (the mirror moved on? unset LAB_KERNEL_ABI)"
  printf '%s\n' "$lists_id" "${pkgs[@]}" >"$memo"
fi
ver=${pkgs[0]#*=}
abi=${pkgs[0]%-amd64=*}
abi=${abi#linux-image-}
kver="$abi-amd64"
kbuild_series=${abi%.*}

hash=$(lab_hash "$0" "$LAB_DIR/lib.sh" "$LAB_DIR/initramfs" "${pkgs[@]}" \
  "busybox $(sha256sum <"$file_busybox")" "$(gcc-12 --version | head -1)")
lab_step kernel "$hash" "kernel $kver" || exit 0
T=$STEP_TMP
lab_log "kernel $kver ($ver): building in $T"

# 1. Download (kept in $LAB_CACHE/debs).
t0=$(lab_now)
mapfile -t debs < <(lab_download "${pkgs[@]}")
t_download=$(lab_since "$t0")
download_bytes=$(stat -c %s "${debs[@]}" | awk '{ s += $1 } END { print s }')
lab_log "packages: $((download_bytes / 1048576)) MiB in ${t_download}s"

# 2. Unpack: the image into root/, headers + kbuild into hdr/ (the headers' Makefile
# includes the common one by absolute path: point it into hdr/).
t0=$(lab_now)
W="$T/work"   # scratch: the unpacked packages (on a tmpfs when possible)
lab_scratch "$W" 3g
mkdir -p "$W/root" "$W/hdr" "$W/src"
dpkg -x "${debs[0]}" "$W/root"
for d in "${debs[1]}" "${debs[2]}" "${debs[3]}"; do dpkg -x "$d" "$W/hdr"; done
kdir="$W/hdr/usr/src/linux-headers-$kver"
sed -i "s|^include /usr/src/|include $W/hdr/usr/src/|" "$kdir/Makefile"
src=linux-source-$kbuild_series
dpkg-deb --fsys-tarfile "${debs[4]}" | tar -xO "./usr/src/$src.tar.xz" | xz -dc |
  tar -x -C "$W/src" "$src/drivers/gpu/drm/vkms" "$src/drivers/gpio/gpio-sim.c" \
    "$src/drivers/gpio/gpiolib.h" "$src/kernel/irq/irq_sim.c"
t_unpack=$(lab_since "$t0")

# 3. Out-of-tree modules. gpio-sim: CONFIG_IRQ_SIM is off in Debian's kernel, so
# irq_sim.c is linked into the module, and irq_to_desc() (not exported) is avoided by
# generic_handle_irq(), which does the same lookup + handler call.
s="$W/src/$src"
mkdir -p "$W/mod/gpio-sim" "$W/mod/vkms"
cp "$s/drivers/gpio/gpio-sim.c" "$W/mod/gpio-sim/gpio-sim-main.c"
cp "$s/drivers/gpio/gpiolib.h" "$s/kernel/irq/irq_sim.c" "$W/mod/gpio-sim/"
sed -i 's/handle_simple_irq(irq_to_desc(irqnum));/generic_handle_irq(irqnum);/' "$W/mod/gpio-sim/irq_sim.c"
grep -q 'generic_handle_irq(irqnum);' "$W/mod/gpio-sim/irq_sim.c" || lab_die "irq_sim.c: the irq_to_desc patch did not apply"
cat >"$W/mod/gpio-sim/Kbuild" <<'EOF'
obj-m := gpio-sim.o
gpio-sim-y := gpio-sim-main.o irq_sim.o
EOF
cp "$s"/drivers/gpu/drm/vkms/* "$W/mod/vkms/"
echo 'obj-m := vkms.o' >>"$W/mod/vkms/Makefile"
t0=$(lab_now)
for m in gpio-sim vkms; do
  nice -n 10 make -s -C "$kdir" M="$W/mod/$m" -j"$(nproc)" modules >"$W/mod/$m.log" 2>&1 ||
    { cat "$W/mod/$m.log" >&2; lab_die "building $m failed"; }
done
t_modules=$(lab_since "$t0")
lab_log "gpio-sim + vkms built in ${t_modules}s"

# 4. The module tree: Debian's + updates/, depmod.
t0=$(lab_now)
mtree="$W/root/lib/modules/$kver"
rm -f "$mtree/build" "$mtree/source"
mkdir -p "$mtree/updates"
cp "$W/mod/gpio-sim/gpio-sim.ko" "$W/mod/vkms/vkms.ko" "$mtree/updates/"
depmod -b "$W/root" "$kver"
for m in gpio-sim vkms; do
  grep -q "^updates/$m.ko:" "$mtree/modules.dep" || lab_die "depmod did not list $m"
done
msize=$(du -sm "$W/root/lib/modules" | cut -f1)
mkfs.ext4 -q -F -L lab-modules -d "$W/root/lib/modules" "$T/modules.img" "$((msize * 12 / 10 + 32))M" >/dev/null

# 5. The initramfs: busybox + the virtio/ext4 chain in dependency order (modules.dep).
ird="$W/initramfs"
mkdir -p "$ird"/{bin,dev,proc,sys,newroot,lib/modules}
cp "$file_busybox" "$ird/bin/busybox"
install -m 0755 "$LAB_DIR/initramfs/init" "$ird/init"
declare -A seen=()
order=()
add_module() {
  local name=$1 path deps d
  path=$(grep -E "(^|/)${name//[-_]/[-_]}\.ko:" "$mtree/modules.dep" | head -1 | cut -d: -f1)
  [ -n "$path" ] || { grep -qE "/${name//[-_]/[-_]}\.ko$" "$mtree/modules.builtin" && return 0; lab_die "module $name not found"; }
  [ -n "${seen[$path]:-}" ] && return 0
  seen[$path]=1
  deps=$(grep -E "^$path:" "$mtree/modules.dep" | cut -d: -f2)
  for d in $deps; do add_module "$(basename "$d" .ko)"; done
  order+=("$path")
}
for m in virtio_pci virtio_blk crc32c_generic ext4; do add_module "$m"; done
: >"$ird/modules.order"
for p in "${order[@]}"; do
  cp "$mtree/$p" "$ird/lib/modules/"
  basename "$p" >>"$ird/modules.order"
done
(cd "$ird" && find . | LC_ALL=C sort | busybox cpio -o -H newc 2>/dev/null | gzip -9) >"$T/initrd.img"

cp "$W/root/boot/vmlinuz-$kver" "$T/vmlinuz"
# The uncompressed kernel, booted through its PVH entry (QEMU -kernel takes the ELF):
# decompressing the bzImage costs ~6 s under TCG. Debian's is xz-compressed.
xz_at=$(grep -abo $'\xfd7zXZ\x00' "$T/vmlinuz" | head -1 | cut -d: -f1 || true)
# (xz stops at the end of its stream: no pipe, or tail's SIGPIPE fails it under pipefail)
if [ -n "$xz_at" ] && xz -dc --single-stream < <(tail -c +"$((xz_at + 1))" "$T/vmlinuz") >"$T/vmlinux" 2>/dev/null &&
  readelf -n "$T/vmlinux" 2>/dev/null >"$T/vmlinux.notes" && grep -q 'Xen.*0x00000012' "$T/vmlinux.notes"; then
  rm -f "$T/vmlinux.notes"
else
  rm -f "$T/vmlinux" "$T/vmlinux.notes"
  lab_log "no PVH vmlinux could be extracted; lab/boot.sh boots the bzImage"
fi
echo "$kver" >"$T/kver"
initramfs_modules=$(tr '\n' ' ' <"$ird/modules.order")
t_images=$(lab_since "$t0")
mkdir -p "$T/ko" && cp "$W/mod/gpio-sim/gpio-sim.ko" "$W/mod/vkms/vkms.ko" "$W/mod/"*.log "$T/ko/"
lab_unscratch
rm -rf "$W"
cat >"$T/info" <<EOF
kernel=$kver
version=$ver
packages=${pkgs[*]}
download_bytes=$download_bytes
download_s=$t_download
unpack_s=$t_unpack
modules_build_s=$t_modules
images_s=$t_images
initramfs_modules=$initramfs_modules
initrd_bytes=$(stat -c %s "$T/initrd.img")
modules_img_bytes=$(stat -c %s "$T/modules.img")
modules_img_used_bytes=$(du -B1 "$T/modules.img" | cut -f1)
total_s=$(lab_since "$t_start")
EOF
lab_step_done kernel
lab_log "kernel $kver: built in $(lab_since "$t_start")s -> $STEP_DIR"
echo "$STEP_DIR"
