#!/usr/bin/env bash
# lab/boot.sh: boots the hardware lab (design §6) in QEMU (TCG) and runs a command in the
# guest: kernel + initramfs + modules disk from lab/build-kernel.sh, the root disk from
# lab/build-rootfs.sh (snapshot=on: every boot starts from the pristine image).
#
#   lab/boot.sh [options] SCRIPT [ARG...]   run SCRIPT (any executable file) in the guest
#   lab/boot.sh [options] -c 'COMMAND'      run a bash command in the guest
#   lab/boot.sh [options] --shell           interactive serial console (root, no password;
#                                           leave with Ctrl-A X)
# The command runs as root once the system is up (lab-run.service, after
# multi-user.target), in the 9p share /run/lab ($LAB_SHARE), which is RUN_DIR/share on
# the host: files put there (--put) are visible to it, files it writes there come back.
# Its output is printed here as it comes (guest serial port ttyS1 -> RUN_DIR/output.log),
# and boot.sh exits with its exit status (124: timeout, 125: the guest never reported).
#
# Options:
#   --kernel DIR       default $CALLBOX_CACHE/lab/kernel (the last build-kernel.sh)
#   --rootfs DIR|IMG   default $CALLBOX_CACHE/lab/rootfs (the last build-rootfs.sh)
#   --run-dir DIR      where console.log, output.log and share/ go (default: a new
#                      directory under $CALLBOX_CACHE/lab/runs/, the last 10 kept)
#   --put FILE         copy FILE into the share (repeatable)
#   --fwd PROTO:PORT[:GUESTPORT][@HOSTADDR]  forward HOSTADDR:PORT on the host (default
#                      127.0.0.1; another address only with --open-net) to the guest's
#                      GUESTPORT (default the same), PROTO tcp or udp (repeatable); the
#                      guest itself reaches nothing (QEMU user networking, restrict=on)
#   --open-net         no restrict=on: the guest may answer (and reach) other addresses
#                      than the host's loopback. Refused unless boot.sh runs in a network
#                      namespace of its own (lab.sh makes one for the call: a caller's
#                      WebRTC packets come from a non-loopback address of that namespace)
#   --mem MiB (1536)  --smp N (2)  --timeout SECONDS (600)  --append 'KERNEL ARGS'
#   --qemu-arg ARG     one more argument for qemu-system-x86_64 (repeatable)
set -euo pipefail
# shellcheck source=lab/lib.sh
. "$(dirname "$0")/lib.sh"

kernel="$LAB_CACHE/kernel" rootfs="$LAB_CACHE/rootfs" run_dir="" mem=1536 smp=2
timeout_s=600 shell=0 command="" script="" extra_append="" open_net=0
puts=() fwds=() script_args=() qemu_extra=()
while (($#)); do
  case "$1" in
    --kernel) kernel=$2; shift 2 ;;
    --rootfs) rootfs=$2; shift 2 ;;
    --run-dir) run_dir=$2; shift 2 ;;
    --put) puts+=("$2"); shift 2 ;;
    --fwd) fwds+=("$2"); shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --append) extra_append=$2; shift 2 ;;
    --qemu-arg) qemu_extra+=("$2"); shift 2 ;;
    --shell) shell=1; shift ;;
    --open-net) open_net=1; shift ;;
    -c) command=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) lab_die "unknown option $1 (see --help)" ;;
    *) script=$1; shift; script_args=("$@"); break ;;
  esac
done
[ "$shell" = 1 ] || [ -n "$command" ] || [ -n "$script" ] || lab_die "nothing to run: SCRIPT, -c COMMAND or --shell (see --help)"
command -v qemu-system-x86_64 >/dev/null || lab_die "qemu-system-x86_64 missing (host packages: see lab/README.md)"
kernel=$(realpath "$kernel")
for f in vmlinuz initrd.img modules.img; do
  [ -f "$kernel/$f" ] || lab_die "no $kernel/$f: run lab/build-kernel.sh"
done
# The uncompressed kernel when there is one (PVH boot, no decompression under TCG).
kimage=vmlinuz
[ -f "$kernel/vmlinux" ] && kimage=vmlinux
[ -d "$rootfs" ] && rootfs="$rootfs/rootfs.img"
[ -f "$rootfs" ] || lab_die "no root disk $rootfs: run lab/build-rootfs.sh"
rootfs=$(realpath "$rootfs")

if [ -z "$run_dir" ]; then
  mkdir -p "$LAB_CACHE/runs"
  # Keep the last 10 runs.
  find "$LAB_CACHE/runs" -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\n' | sort -rn |
    tail -n +10 | cut -d' ' -f2- | xargs -r rm -rf
  run_dir=$(mktemp -d "$LAB_CACHE/runs/$(date +%Y%m%d-%H%M%S)-XXXX")
fi
mkdir -p "$run_dir/share"
run_dir=$(realpath "$run_dir")
share="$run_dir/share"
: >"$run_dir/output.log"
: >"$run_dir/console.log"
for f in "${puts[@]}"; do cp -r "$f" "$share/"; done
if [ -n "$script" ]; then
  [ -f "$script" ] || lab_die "no such script: $script"
  cp "$script" "$share/$(basename "$script")"
  {
    echo '#!/bin/bash'
    printf 'exec ./%q' "$(basename "$script")"
    printf ' %q' "${script_args[@]}"
    echo
  } >"$share/cmd"
elif [ -n "$command" ]; then
  printf '#!/bin/bash\n%s\n' "$command" >"$share/cmd"
fi
[ -f "$share/cmd" ] && chmod +x "$share/cmd" "$share/$(basename "${script:-cmd}")"

netdev="user,id=n0,restrict=on"
if [ "$open_net" = 1 ]; then
  [ "$(readlink /proc/self/ns/net)" != "$(readlink /proc/1/ns/net)" ] ||
    lab_die "--open-net outside a network namespace of its own: the guest could reach this machine's network"
  netdev="user,id=n0"
fi
for f in "${fwds[@]}"; do
  haddr=127.0.0.1
  if [[ "$f" == *@* ]]; then
    haddr=${f##*@}
    [ "$open_net" = 1 ] || lab_die "--fwd $f: a host address other than 127.0.0.1 needs --open-net"
  fi
  IFS=: read -r proto hport gport <<<"${f%@*}"
  case "$proto" in tcp|udp) ;; *) lab_die "--fwd $f: protocol must be tcp or udp" ;; esac
  [[ "$hport" =~ ^[0-9]+$ ]] || lab_die "--fwd $f: bad port"
  netdev+=",hostfwd=$proto:$haddr:$hport-:${gport:-$hport}"
done

# Drivers udev would load for QEMU's PC and `-cpu max` that the lab never uses: each
# costs seconds of boot under TCG. mitigations=off: a throwaway guest, faster under TCG.
blacklist=floppy,ata_piix,ata_generic,libata,pcspkr,psmouse,serio_raw,joydev,evdev,button
blacklist+=,kvm,kvm_amd,kvm_intel,ccp,cfg80211,rfkill,i2c_piix4,powernow_k8,ppdev,parport_pc
blacklist+=,aesni_intel,crc32_pclmul,crct10dif_pclmul,ghash_clmulni_intel,sha1_ssse3
blacklist+=,sha256_ssse3,sha512_ssse3,qemu_fw_cfg,efi_pstore,dm_mod,loop,fuse
append="console=ttyS0 root=/dev/vda lab.modules=/dev/vdb panic=-1 module_blacklist=$blacklist"
append+=" mitigations=off systemd.show_status=auto $extra_append"
# shellcheck disable=SC2054 # commas are QEMU's, inside single arguments
qemu=(
  qemu-system-x86_64 -accel tcg -cpu max,avx=off,avx2=off -m "$mem" -smp "$smp"
  -nographic -no-reboot -nodefaults -vga none -monitor none
  -kernel "$kernel/$kimage" -initrd "$kernel/initrd.img"
  -drive "file=$rootfs,if=virtio,format=raw,snapshot=on"
  -drive "file=$kernel/modules.img,if=virtio,format=raw,readonly=on"
  -netdev "$netdev" -device virtio-net-pci,netdev=n0,romfile=
  -virtfs "local,path=$share,mount_tag=lab,security_model=none,id=lab"
  "${qemu_extra[@]}"
)
if [ "$shell" = 1 ]; then
  lab_log "serial console here (leave: Ctrl-A X); run dir $run_dir"
  exec "${qemu[@]}" -append "$append" -serial mon:stdio -serial "file:$run_dir/output.log"
fi

lab_log "booting $(cat "$kernel/kver") with $(basename "$(dirname "$rootfs")"); run dir $run_dir"
t0=$(lab_now)
timeout "$timeout_s" "${qemu[@]}" -append "$append lab.run=1" \
  -serial "file:$run_dir/console.log" -serial "file:$run_dir/output.log" \
  </dev/null >"$run_dir/qemu.log" 2>&1 &
qpid=$!
# shellcheck disable=SC2064
trap "kill $qpid 2>/dev/null || true" EXIT INT TERM

# Print the guest's output as it comes; note the wall time at which the script started.
rc=125
while IFS= read -r line; do
  line=${line%$'\r'}
  case "$line" in
    "lab-run: started at guest uptime "*)
      lab_log "userspace script started $(lab_since "$t0") s after QEMU started (${line#lab-run: started at })" ;;
    "lab-run: exit "*)
      rc=${line#lab-run: exit }; rc=${rc%% *}
      lab_log "script exited $rc; $(lab_since "$t0") s after QEMU started (${line#lab-run: exit * at })" ;;
    *) printf '%s\n' "$line" ;;
  esac
done < <(tail -n +1 -f --pid="$qpid" "$run_dir/output.log")
qrc=0
wait "$qpid" || qrc=$?
trap - EXIT INT TERM
echo "$rc" >"$run_dir/exit-code"
if [ "$qrc" = 124 ]; then
  lab_log "timeout after $timeout_s s; last console lines ($run_dir/console.log):"
  tail -n 30 "$run_dir/console.log" >&2
  exit 124
fi
if [ "$rc" = 125 ]; then
  lab_log "the guest never reported; last console lines ($run_dir/console.log):"
  tail -n 30 "$run_dir/console.log" >&2
fi
lab_log "QEMU ran $(lab_since "$t0") s; logs in $run_dir"
exit "$rc"
