# shellcheck shell=bash
# The check harness shared by realm-run's QEMU test scripts (nested-tests, realm-tests; the guest
# image also by firmware-qemu-test): declare checks, build small busybox guest images, and judge
# results. Source after lib.sh.
#
#   add_check NAME LIMIT 'COMMAND' 'EXPECTATIONS'
#     COMMAND runs in the guest host under a watchdog of LIMIT seconds; EXPECTATIONS is bash run on
#     this machine afterwards with: expect_rc N, expect_out TEXT, expect_line TEXT (a whole stdout
#     line, carriage returns ignored), expect_no_out TEXT, expect_err TEXT,
#     expect_err_lines N, expect_ms_max N [CHECK], expect_file PATH, expect_share_contains PATH TEXT (PATHs
#     relative to the results' parent).
#   harness_select           applies --only / --list (ONLY, LIST)
#   build_guest_initramfs PATH BODY [FILE...]   PATH.cpio.gz: busybox, /init mounts proc, sys,
#                            devtmpfs, runs BODY; FILEs (a .xz is unpacked) go to / of the image
#   build_failure_disks DIR REALM_RUN KERNEL   damaged boot disks the firmware must refuse (below)
#   harness_results DIR NAME LOG      judges DIR/NAME.{out,err,rc,ms}; prints PASS/FAIL lines, the
#                                     figures the checks reported (harness_figures), and
#                                     "NAME: N passed, M failed"; exits 1 if any failed

CHECKS=()
declare -A CHECK_LIMIT CHECK_CMD CHECK_EXPECT
add_check() {
  [[ $1 =~ ^[a-z0-9][a-z0-9-]*$ ]] || die "check name '$1': use [a-z0-9-]"
  CHECKS+=("$1"); CHECK_LIMIT[$1]=$2; CHECK_CMD[$1]=$3; CHECK_EXPECT[$1]=$4
}

harness_select() {
  local c sel=()
  if [ "${LIST:-0}" = 1 ]; then
    for c in "${CHECKS[@]}"; do printf '%-16s %4ss  %s\n' "$c" "${CHECK_LIMIT[$c]}" "${CHECK_CMD[$c]}"; done
    exit 0
  fi
  [ -n "${ONLY:-}" ] || return 0
  for c in ${ONLY//,/ }; do
    [ -n "${CHECK_CMD[$c]+x}" ] || die "no check named '$c' (--list shows them)"
    sel+=("$c")
  done
  CHECKS=("${sel[@]}")
}

# reproducible newc cpio of DIR (sorted names, fixed mtimes and owners), /init first, gzip -n
pack_initramfs() {
  local d=$1 out=$2
  find "$d" -exec touch -h -d @0 {} +
  (cd "$d" && find . -mindepth 1 ! -path ./init | sed 's,^\./,,' | LC_ALL=C sort | { echo init; cat; } |
     cpio -o -H newc -R 0:0 --reproducible --quiet) | gzip -n -9 > "$out" || die "packing $d failed"
}

build_guest_initramfs() {
  local d=$1 body=$2 f; shift 2
  rm -rf "$d"; mkdir -p "$d"/{bin,dev,proc,sys,tmp}
  for f in "$@"; do
    case $f in *.xz) xz -dc "$f" > "$d/$(basename "$f" .xz)" ;; *) cp "$f" "$d/" ;; esac
  done
  cp "$BUSYBOX" "$d/bin/busybox"
  ln -s busybox "$d/bin/sh"
  [ "$(id -u)" -ne 0 ] || mknod -m 600 "$d/dev/console" c 5 1
  cat > "$d/init" <<EOF
#!/bin/sh
export PATH=/bin
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
$body
EOF
  chmod 755 "$d/init"
  pack_initramfs "$d" "$d.cpio.gz"
}

# HWRNG_GUEST: guest shell lines (for build_guest_initramfs, with "$(hwrng_module)" among its
# files) that load virtio-rng and report the kernel's hwrng and 64 bytes read from it:
#   "hwrng: virtio_rng.0", "hwrng read: 64 bytes" and, when at least 32 of them differ, HWRNG_VARIED
# (a device that answers with zeros or a repeated byte fails the check)
HWRNG_GUEST='insmod /virtio-rng.ko
echo "hwrng: $(cat /sys/class/misc/hw_random/rng_current)"
head -c 64 /dev/hwrng > /tmp/hwrng
echo "hwrng read: $(wc -c < /tmp/hwrng) bytes"
[ "$(od -An -v -tx1 /tmp/hwrng | tr -s " " "\n" | grep . | sort -u | wc -l)" -ge 32 ] && echo HWRNG_VARIED'
hwrng_module() {
  local m=$MODULES_DIR/kernel/drivers/char/hw_random/virtio-rng.ko.xz
  [ -f "$m" ] || die "no virtio-rng module at $m"
  echo "$m"
}

# SHARE_GUEST: guest shell lines (for build_guest_initramfs, with $(share_modules) among its files)
# for realm-run's share_check.sh: they mount --share tags share0 (read-write) and ro (read-only on
# the host; mounted read-write here, so that refusing changes is realm-run's doing), round-trip
# files, make a directory and a symlink, try to leave the share, and try to change the ro share.
# Lines start with "share: ". A stock Linux client resolves ".." and symlinks itself, in its own
# tree, so its escape attempts test that nothing the guest does reaches past the share; the
# server's own confinement against a hostile client is tested by NinePTests and the ninep fuzzer.
SHARE_GUEST='for m in netfs 9pnet 9pnet_virtio 9p; do insmod /$m.ko; done
S=/mnt/share R=/mnt/ro
mkdir -p $S $R
mount -t 9p -o trans=virtio,version=9p2000.L share0 $S && echo "share: mounted share0"
mount -t 9p -o trans=virtio,version=9p2000.L ro $R && echo "share: mounted ro"
echo "share: options $(grep " $S " /proc/mounts | cut -d" " -f4)"
for d in /sys/bus/virtio/devices/*; do [ "$(cat $d/device)" != 0x0009 ] || echo "share: virtio device 0x0009 ACCESS_PLATFORM=$(cut -c34 $d/features)"; done
echo "share: guest read from-host.bin $(sha256sum < $S/from-host.bin | cut -d" " -f1)"
head -c 262144 /dev/urandom > /tmp/g.bin
cp /tmp/g.bin $S/sub/guest.bin && mv $S/sub/guest.bin $S/sub/renamed.bin
echo "share: guest wrote renamed.bin $(sha256sum < /tmp/g.bin | cut -d" " -f1)"
mkdir $S/newdir && ln -s ../sub/renamed.bin $S/newdir/link && echo "share: link reads $(readlink $S/newdir/link)"
echo "share: size $(stat -L -c %s $S/newdir/link) listing $(ls $S/sub | tr "\n" " ")"
echo escape > $S/../escape-dotdot 2>/dev/null
echo escape > $S/root-link/escape-root 2>/dev/null
mv $S/move-me.txt $S/up/ 2>/dev/null || echo "share: rename into up refused"
echo x > $R/data 2>/dev/null || echo "share: ro write refused"
touch $R/new 2>/dev/null || echo "share: ro create refused"
rm $R/data 2>/dev/null || echo "share: ro remove refused"
mkdir $R/d 2>/dev/null || echo "share: ro mkdir refused"
echo "share: ro reads $(cat $R/data)"
sync; umount $S $R && echo "share: unmounted"'
share_modules() {
  local m
  for m in fs/netfs/netfs net/9p/9pnet net/9p/9pnet_virtio fs/9p/9p; do
    [ -f "$MODULES_DIR/kernel/$m.ko.xz" ] || die "no $m module in $MODULES_DIR"
    echo "$MODULES_DIR/kernel/$m.ko.xz"
  done
}
# SHARE_CHECK: a script for the machine that runs realm-run (busybox sh; "sh /share-check.sh
# REALM-RUN-ARGS...") around a guest with SHARE_GUEST: it makes /share and /ro and, beside them,
# /outside, runs realm-run with REALM-RUN-ARGS and the two --share options, prints realm-run's
# output and then what it checked on its side, and exits with realm-run's status:
#   "SHARE host->guest bytes match", "SHARE guest->host bytes match", "SHARE host sees the guest's
#   symlink", "SHARE nothing outside changed", "SHARE ro unchanged"
SHARE_CHECK='rm -rf /share /ro /outside /escape-dotdot /escape-root; mkdir -p /share/sub /ro /outside
head -c 262144 /dev/urandom > /share/from-host.bin
echo keep > /outside/keep; echo move > /share/move-me.txt; echo ro-data > /ro/data
ln -s / /share/root-link; ln -s ../outside /share/up
fingerprint() { find "$1" | sort | while read -r f; do stat -c "%n %s %Y %a" "$f"; done; cat "$1"/*; }
outside=$(fingerprint /outside) ro=$(fingerprint /ro)
realm-run "$@" --share /share --share /ro,tag=ro,ro > /tmp/share.out 2> /tmp/share.err; rc=$?
cat /tmp/share.out; cat /tmp/share.err >&2
g=$(sed -n "s/.*share: guest read from-host.bin \([0-9a-f]*\).*/\1/p" /tmp/share.out)
[ -n "$g" ] && [ "$g" = "$(sha256sum < /share/from-host.bin | cut -d" " -f1)" ] && echo "SHARE host->guest bytes match"
w=$(sed -n "s/.*share: guest wrote renamed.bin \([0-9a-f]*\).*/\1/p" /tmp/share.out)
[ -n "$w" ] && [ "$w" = "$(sha256sum < /share/sub/renamed.bin | cut -d" " -f1)" ] && echo "SHARE guest->host bytes match"
[ "$(readlink /share/newdir/link)" = ../sub/renamed.bin ] && echo "SHARE host sees the guest'"'"'s symlink"
[ "$(fingerprint /outside)" = "$outside" ] && [ ! -e /escape-dotdot ] && [ ! -e /escape-root ] && [ -f /share/move-me.txt ] && echo "SHARE nothing outside changed"
[ "$(fingerprint /ro)" = "$ro" ] && echo "SHARE ro unchanged"
exit $rc'
# SHARE_EXPECTATIONS: what a check running SHARE_CHECK must show
SHARE_EXPECTATIONS='expect_rc 0; expect_out "share: mounted share0"; expect_out "share: mounted ro"
  expect_out "SHARE host->guest bytes match"; expect_out "SHARE guest->host bytes match"
  expect_out "share: size 262144 listing renamed.bin"; expect_out "SHARE host sees the guest'"'"'s symlink"
  expect_out "share: rename into up refused"; expect_out "SHARE nothing outside changed"
  expect_out "share: ro write refused"; expect_out "share: ro create refused"; expect_out "share: ro remove refused"
  expect_out "share: ro mkdir refused"; expect_out "share: ro reads ro-data"; expect_out "SHARE ro unchanged"
  expect_out "share: unmounted"'

# NET_GUEST: guest shell lines (for build_guest_initramfs, with $(net_modules) among its files) for
# NET_CHECK. eth0 (virtio-net) as 10.0.2.15/24 with the host at 10.0.2.1 (tap), or with the
# kernel parameter netmode=user by DHCP with the host at 10.0.2.2 (--net user: the host's
# loopback); the guest pings the host, fetches the host's file (4 MiB, or netmib=N MiB) by HTTP
# (busybox wget and httpd), then serves one of its own on port 8080 until the host has fetched it.
# Lines start with "net: "; FIGURE lines time each transfer.
NET_GUEST='for m in failover net_failover virtio_net; do insmod /$m.ko; done
cs() { read -r u _ < /proc/uptime; echo "${u%.*}${u#*.}"; }  # centiseconds since boot
ip link set lo up; ip link set eth0 up
mode=${netmode:-tap} n=${netmib:-4}
if [ $mode = user ]; then
  cat > /tmp/dhcp.sh <<"DHCP"
#!/bin/sh
[ "$1" = bound ] && ip addr add $ip/$mask dev $interface && ip route add default via $router
exit 0
DHCP
  chmod +x /tmp/dhcp.sh
  udhcpc -i eth0 -n -q -t 10 -s /tmp/dhcp.sh > /dev/null 2>&1 && echo "net: dhcp $(ip -4 addr show eth0 | sed -n "s/.*inet \([0-9.\/]*\).*/\1/p") via $(ip route | sed -n "s/^default via \([0-9.]*\).*/\1/p")"
  h=10.0.2.2
else
  ip addr add 10.0.2.15/24 dev eth0; h=10.0.2.1
fi
echo "net: mac $(cat /sys/class/net/eth0/address)"
for d in /sys/bus/virtio/devices/*; do [ "$(cat $d/device)" != 0x0001 ] || echo "net: virtio device 0x0001 ACCESS_PLATFORM=$(cut -c34 $d/features)"; done
for i in $(seq 1 60); do ping -c 1 -W 2 $h > /dev/null 2>&1 && { echo "net: ping ok"; break; }; sleep 1; done
a=$(cs); wget -q -T 30 -O /tmp/from-host.bin http://$h:8080/from-host.bin; b=$(cs)
echo "net: guest fetched from-host.bin $(sha256sum < /tmp/from-host.bin | cut -d" " -f1)"
echo "FIGURE: net host->guest $n MiB by HTTP over $mode in $((b - a)) cs: $((n * 102400 / (b - a + 1))) KB/s"
mkdir -p /srv; head -c $((n * 1048576)) /dev/urandom > /srv/from-guest.bin; echo ready > /srv/ready
echo "net: guest serves from-guest.bin $(sha256sum < /srv/from-guest.bin | cut -d" " -f1)"
httpd -p 8080 -h /srv
( while :; do sleep 10; echo "net: eth0 $(grep eth0: /proc/net/dev | tr -s " ")"; done ) &
for i in $(seq 1 300); do wget -q -T 5 -O /dev/null http://$h:8080/done 2> /dev/null && { echo "net: done"; break; }; sleep 0.5; done
echo "net: eth0 $(grep eth0: /proc/net/dev | tr -s " ")"'
net_modules() {
  local m
  for m in net/core/failover drivers/net/net_failover drivers/net/virtio_net; do
    [ -f "$MODULES_DIR/kernel/$m.ko.xz" ] || die "no $m module in $MODULES_DIR"
    echo "$MODULES_DIR/kernel/$m.ko.xz"
  done
}
# NET_CHECK (its files are /tmp/net-run.*: a check's own output may be /tmp/NAME.out): a script for
# the machine that runs realm-run (busybox sh, in a network namespace of its own: "unshare -n sh
# /net-check.sh tap|user REALM-RUN-ARGS..."; for tap the tun module loaded) around a guest with
# NET_GUEST: it serves a file of NET_MIB MiB (default 4; the guest's netmib=N must say the same) by
# HTTP (and times fetching it over loopback, the ceiling) and runs realm-run (or $NET_RUN: "sh
# share-check.sh" runs it through SHARE_CHECK) with REALM-RUN-ARGS and
#   tap:  --net tap=rr0 (realm-run creates the tap and brings it up), giving the tap 10.0.2.1/24,
#         and reaches the guest at 10.0.2.15:8080;
#   user: --net user,hostfwd=tcp:127.0.0.1:8081-:8080 (and netmode=user for the guest), and
#         reaches the guest through the forward, 127.0.0.1:8081;
# then fetches the guest's file and times it, tells the guest it is done, and checks both files'
# digests: "NET host->guest bytes match", "NET guest->host bytes match". Exits with realm-run's status.
NET_CHECK='cs() { read -r u _ < /proc/uptime; echo "${u%.*}${u#*.}"; }
mode=$1 n=${NET_MIB:-4}; shift
ip link set lo up
rm -rf /srv; mkdir -p /srv; head -c $((n * 1048576)) /dev/urandom > /srv/from-host.bin
httpd -p 8080 -h /srv
a=$(cs); wget -q -O /tmp/loopback.bin http://127.0.0.1:8080/from-host.bin; b=$(cs)
echo "FIGURE: net loopback (the ceiling) $n MiB by HTTP in $((b - a)) cs: $((n * 102400 / (b - a + 1))) KB/s"
if [ "$mode" = user ]; then
  ${NET_RUN:-realm-run} "$@" --net user,hostfwd=tcp:127.0.0.1:8081-:8080 > /tmp/net-run.out 2> /tmp/net-run.err & pid=$!
  guest=127.0.0.1:8081
else
  ${NET_RUN:-realm-run} "$@" --net tap=rr0 > /tmp/net-run.out 2> /tmp/net-run.err & pid=$!
  for i in $(seq 1 300); do ip link show rr0 > /dev/null 2>&1 && break; sleep 0.1; done
  ip addr add 10.0.2.1/24 dev rr0; ip link set rr0 up
  guest=10.0.2.15:8080
fi
ready=no; for i in $(seq 1 400); do wget -q -T 5 -O /dev/null http://$guest/ready 2> /tmp/net-run.wget && { ready=yes; break; }; kill -0 $pid 2> /dev/null || break; sleep 0.5; done
echo "net: the guest serves: $ready"
[ $ready = yes ] || { echo "net: last wget: $(cat /tmp/net-run.wget)"; ip addr; ip route; } >&2
a=$(cs); wget -q -T 30 -O /tmp/from-guest.bin http://$guest/from-guest.bin; echo "net: host fetch status $?"; b=$(cs)
[ "$mode" = user ] || echo "net: rr0 $(grep rr0: /proc/net/dev | tr -s " ")"
echo "FIGURE: net guest->host $n MiB by HTTP over $mode in $((b - a)) cs: $((n * 102400 / (b - a + 1))) KB/s"
echo done > /srv/done
wait $pid; rc=$?
kill $(pidof httpd) 2> /dev/null
cat /tmp/net-run.out; cat /tmp/net-run.err >&2
g=$(sed -n "s/.*net: guest fetched from-host.bin \([0-9a-f]*\).*/\1/p" /tmp/net-run.out)
[ -n "$g" ] && [ "$g" = "$(sha256sum < /srv/from-host.bin | cut -d" " -f1)" ] && echo "NET host->guest bytes match"
w=$(sed -n "s/.*net: guest serves from-guest.bin \([0-9a-f]*\).*/\1/p" /tmp/net-run.out)
[ -n "$w" ] && [ "$w" = "$(sha256sum < /tmp/from-guest.bin | cut -d" " -f1)" ] && echo "NET guest->host bytes match"
exit $rc'
NET_EXPECTATIONS='expect_rc 0; expect_out "net: mac 52:54:00:"; expect_out "net: ping ok"; expect_out "NET host->guest bytes match"
  expect_out "NET guest->host bytes match"; expect_out "net: done"'

# build_failure_disks DIR REALM_RUN KERNEL: disks made by `REALM_RUN image create` with KERNEL (a
# small arm64 Image) and then damaged, for checks that the firmware refuses them and realm-run exits
# 4 with the firmware's reason. Each is gzipped (64 MiB, nearly all zeros); checks unpack it to /tmp.
#   bad-gpt.img.gz    both GPT headers' CRCs broken       "partition table: GPT header CRC32 mismatch"
#   no-kernel.img.gz  the ESP's VMLINUZ entry renamed     "/vmlinuz or an initrd: file not found"
#   not-image.img.gz  the primary GPT header's CRC and the kernel's ARM\x64 magic broken: the
#                     firmware warns and boots from the backup GPT, then "/vmlinuz is not an arm64 Image"
#   loop.img.gz       the kernel's first cluster linked to itself   "FAT cluster chain loops"
# gz_disk_command GZ REALM-RUN-ARGS: a check command that unpacks the gzipped disk GZ (a path in
# the guest) to its /tmp, boots realm-run --disk on it with REALM-RUN-ARGS, removes it again and
# exits with realm-run's status
gz_disk_command() {
  local n; n=$(basename "$1" .img.gz)
  printf 'gunzip -c %s > /tmp/%s.img && realm-run --disk /tmp/%s.img %s; rc=$?; rm -f /tmp/%s.img; exit $rc' "$1" "$n" "$n" "$2" "$n"
}
# disk_written_command IMG: a command printing "disk written: N", N the lines in IMG holding the
# guest's WRITTEN-BY-aarch64-GUEST record. `image create` puts the root (data) partition last, so
# only the image's last 4 MiB are searched: grep over a whole 118 MB image took 86 s under TCG.
disk_written_command() {
  printf 'echo "disk written: $(tail -c 4194304 %s | grep -c WRITTEN-BY-aarch64-GUEST)"' "$1"
}
predict_rim() {   # predict_rim REALM_RUN MEASURE-OPTIONS...: the RIM `realm-run measure` prints (dies without one)
  local rim
  rim=$("$1" measure "${@:2}" | grep -oE '[0-9a-f]{64,128}' | head -1) || die "realm-run measure ${*:2} failed"
  [ -n "$rim" ] || die "realm-run measure ${*:2} printed no RIM"
  echo "$rim"
}
build_failure_disks() {
  local dir=$1 rr=$2 kernel=$3 base=$1/failure-base.img sectors entry esp fat first off d
  mkdir -p "$dir"
  rm -f "$base"
  "$rr" image create --kernel "$kernel" --params quiet -o "$base" >/dev/null || die "image create (failure disks) failed"
  sectors=$(($(stat -c %s "$base") / 512))
  # the ESP: the first partition entry's first LBA (the entry array's LBA is at 72 in the header)
  esp=$(($(peek_le "$base" $(($(peek_le "$base" $((512 + 72)) 8) * 512 + 32)) 8) * 512))
  fat=$((esp + $(peek_le "$base" $((esp + 14)) 2) * 512))
  entry=$(grep -obUa 'VMLINUZ ' "$base" | head -1 | cut -d: -f1)
  [ -n "$entry" ] || die "no VMLINUZ directory entry in $base"
  first=$(($(peek_le "$base" $((entry + 20)) 2) << 16 | $(peek_le "$base" $((entry + 26)) 2)))
  for d in bad-gpt no-kernel not-image loop; do cp "$base" "$dir/$d.img"; done
  poke_le "$dir/bad-gpt.img" $((512 + 16)) 4 $(($(peek_le "$base" $((512 + 16)) 4) ^ 0xFFFFFFFF))
  poke_le "$dir/bad-gpt.img" $(((sectors - 1) * 512 + 16)) 4 $(($(peek_le "$base" $(((sectors - 1) * 512 + 16)) 4) ^ 0xFFFFFFFF))
  poke_le "$dir/no-kernel.img" "$entry" 1 0x58   # 'X'
  poke_le "$dir/not-image.img" $((512 + 16)) 4 $(($(peek_le "$base" $((512 + 16)) 4) ^ 0xFFFFFFFF))
  for off in $(grep -obUa 'ARMd' "$base" | cut -d: -f1); do   # the magic at offset 56 of a sector
    [ $((off % 512)) -ne 56 ] || poke_le "$dir/not-image.img" "$off" 1 0x58
  done
  poke_le "$dir/loop.img" $((fat + first * 4)) 4 "$first"
  for d in bad-gpt no-kernel not-image loop; do gzip -nf "$dir/$d.img"; done
  rm -f "$base"
}

harness_results() {
  local dir=$1 name=$2 log=$3 c r passed=0 failed=0
  REASONS=()
  miss() { REASONS+=("$*"); }
  expect_rc() { [ "$C_RC" = "$1" ] || miss "rc=$C_RC, expected $1"; }
  expect_out() { grep -qF -- "$1" "$C_OUT" || miss "no '$1' in stdout"; }
  expect_line() { tr -d '\r' < "$C_OUT" | grep -qxF -- "$1" || miss "no line '$1' in stdout"; }
  expect_no_out() { ! grep -qF -- "$1" "$C_OUT" || miss "'$1' in stdout"; }
  expect_err() { grep -qF -- "$1" "$C_ERR" || miss "no '$1' in stderr"; }
  expect_err_lines() {
    local n; n=$(grep -c '' "$C_ERR" || true)
    [ "$n" = "$1" ] || miss "$n stderr lines, expected $1"
  }
  expect_ms_max() {   # expect_ms_max LIMIT [CHECK]: within LIMIT ms (plus CHECK's own time, if given)
    local base=0 what=""
    if [ -n "${2:-}" ] && [ -f "$dir/$2.ms" ]; then base=$(cat "$dir/$2.ms"); what=" + $base ms ($2)"; fi
    [ "$C_MS" -le $(($1 + base)) ] 2>/dev/null || miss "took ${C_MS} ms, more than $1 ms$what"
  }
  expect_file() { [ -s "$dir/../$1" ] || miss "no file $1"; }
  expect_share_contains() { grep -qaF -- "$2" "$dir/../$1" || miss "'$2' not in $1"; }
  for c in "${CHECKS[@]}"; do
    C_OUT=$dir/$c.out; C_ERR=$dir/$c.err
    REASONS=()
    if [ ! -f "$dir/$c.rc" ]; then
      miss "never ran or did not finish (see $log)"
    else
      C_RC=$(cat "$dir/$c.rc"); C_MS=$(cat "$dir/$c.ms" 2>/dev/null || echo 0)
      if [ "$C_RC" = 137 ]; then miss "killed by the watchdog after ${CHECK_LIMIT[$c]}s"; else eval "${CHECK_EXPECT[$c]}"; fi
    fi
    if [ ${#REASONS[@]} -eq 0 ]; then
      echo "PASS $c (${C_MS} ms)"; passed=$((passed + 1))
    else
      r=$(printf '%s; ' "${REASONS[@]}"); echo "FAIL $c: ${r%; }"; failed=$((failed + 1))
      { tail -n 15 "$C_OUT" 2>/dev/null | sed "s/^/    $c stdout| /"; tail -n 15 "$C_ERR" 2>/dev/null | sed "s/^/    $c stderr| /"; } || true
    fi
  done
  harness_figures "$dir"
  stage "results" "$passed passed, $failed failed"
  echo "$name: $passed passed, $failed failed"
  [ "$failed" -eq 0 ] || { echo "$name: console log: $log" >&2; exit 1; }
}

# harness_figures DIR: the figures in the checks' output, one "figure:" line each: the time of every
# check, the MMIO exit round trip (mmio-latency payload), measured-populate speed and peak RSS
# (realm-run --log-level info), and each "FIGURE: " line a check printed
harness_figures() {
  local dir=$1 c line ticks freq
  for c in "${CHECKS[@]}"; do
    [ -f "$dir/$c.ms" ] && echo "figure: $c took $(cat "$dir/$c.ms") ms"
    line=$(grep -oE 'MMIO_EXITS=1000 TICKS=[0-9a-f]+ FREQ=[0-9a-f]+' "$dir/$c.out" 2>/dev/null | head -1) || true
    if [ -n "$line" ]; then
      ticks=$((16#$(sed -E 's/.*TICKS=([0-9a-f]+).*/\1/' <<< "$line")))
      freq=$((16#$(sed -E 's/.*FREQ=([0-9a-f]+).*/\1/' <<< "$line")))
      [ "$freq" -gt 0 ] && echo "figure: $c: MMIO exit round trip $((ticks * 1000 / freq)) us (1000 exits, $ticks ticks at $freq Hz)"
    fi
    grep -ohE 'populated [0-9]+ bytes, measured, in [0-9]+ ms \([0-9]+ MB/s\)' "$dir/$c.err" 2>/dev/null | sed "s/^/figure: $c: /" || true
    grep -ohE 'peak RSS [0-9]+ MiB' "$dir/$c.err" 2>/dev/null | sed "s/^/figure: $c: realm-run /" || true
    sed -n "s/^FIGURE: /figure: $c: /p" "$dir/$c.out" 2>/dev/null || true
  done
}

# build_uefi_disk KIND OUT: a disk as a distribution installs it, from Debian's arm64 packages
# (assets.env: KERNEL_IMAGE, MODULES_DIR, BUSYBOX, SHIM_EFI, GRUB_EFI, SYSTEMD_BOOT_EFI), built
# without loop devices or a chroot. GPT: 1 = FAT32 ESP (64 MiB), 2 = ext4 root. The root holds
# busybox and /sbin/init, which prints "UEFI_ROOT_MARKER <kind> <cmdline>" and powers off: seen
# only once the root is mounted. The initrd loads virtio_blk and ext4, mounts /dev/vda2 and
# switches to it. Command lines are the disk's own (grub.cfg, the BLS entry): nothing is added.
#   grub       shim as \EFI\BOOT\BOOTAA64.EFI, signed GRUB beside it, \EFI\debian\grub.cfg pointing
#              at the root's /boot/grub/grub.cfg, which boots /boot/vmlinuz and /boot/initrd.img
#   grub-gzip  the same with a gzip-compressed /boot/vmlinuz (as Ubuntu ships it)
#   sdboot     systemd-boot as BOOTAA64.EFI, /loader/entries/debian.conf, kernel and initrd on the ESP
#   stub       the kernel itself (its EFI stub) as BOOTAA64.EFI: no initrd, so it reaches the kernel only
# and disks that must fail, each with a small root (8 MiB: busybox and /sbin/init only):
#   app-not-pe       BOOTAA64.EFI is a text file
#   app-unsupported  BOOTAA64.EFI returns EFI_UNSUPPORTED at once (tiny_efi_app)
#   app-crash        BOOTAA64.EFI executes an undefined instruction (udf #0xefe0) (tiny_efi_app)
# UEFI_DISK_EXTRA_ARGS (env) is appended to the command line: for measurements only (efi=debug).
build_uefi_disk() {
  local kind=$1 out=$2 w=$2.d esp_mb=64 root_mb=112 total esp_first esp_sectors root_first root_sectors
  local m cmdline="root=/dev/vda2 ro panic=-1${UEFI_DISK_EXTRA_ARGS:+ $UEFI_DISK_EXTRA_ARGS}"
  rm -rf "$w" "$out"; mkdir -p "$w/esp" "$w/root"/{bin,sbin,dev,proc,sys,boot/grub}
  # the initrd: modules in dependency order, then the root
  local mods=()
  for m in lib/crc/crc16 fs/mbcache fs/jbd2/jbd2 fs/ext4/ext4 drivers/block/virtio_blk; do
    mods+=("$MODULES_DIR/kernel/$m.ko.xz")
  done
  build_guest_initramfs "$w/initrd" '
for m in crc16 mbcache jbd2 ext4 virtio_blk; do insmod /$m.ko 2>/dev/null; done
for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /dev/vda2 ] && break; sleep 1; done
mkdir -p /newroot
mount -t ext4 -o ro /dev/vda2 /newroot || { echo "UEFI_INITRD: cannot mount /dev/vda2"; poweroff -f; }
exec switch_root /newroot /sbin/init' "${mods[@]}"
  cp "$BUSYBOX" "$w/root/bin/busybox"
  # sleep: let the console drain (poweroff -f does not wait for it; the marker's newline would be lost)
  printf '#!/bin/busybox sh\n/bin/busybox mount -t proc proc /proc\necho "UEFI_ROOT_MARKER %s $(/bin/busybox cat /proc/cmdline)"\n/bin/busybox sleep 1\n/bin/busybox poweroff -f\n' \
    "$kind" > "$w/root/sbin/init"
  chmod 755 "$w/root/sbin/init"
  case $kind in
    grub|grub-gzip)
      if [ "$kind" = grub-gzip ]; then gzip -n -1 -c "$KERNEL_IMAGE" > "$w/root/boot/vmlinuz"; else cp "$KERNEL_IMAGE" "$w/root/boot/vmlinuz"; fi
      cp "$w/initrd.cpio.gz" "$w/root/boot/initrd.img"
      printf 'set timeout=0\nmenuentry "Debian GNU/Linux" {\n  linux /boot/vmlinuz %s\n  initrd /boot/initrd.img\n}\n' \
        "$cmdline" > "$w/root/boot/grub/grub.cfg"
      mkdir -p "$w/esp/EFI/BOOT" "$w/esp/EFI/debian"
      cp "$SHIM_EFI" "$w/esp/EFI/BOOT/BOOTAA64.EFI"
      cp "$GRUB_EFI" "$w/esp/EFI/BOOT/grubaa64.efi"
      # as grub-install writes it: find the root by its UUID, then its grub.cfg
      printf "search.fs_uuid %s root\nset prefix=(\$root)'/boot/grub'\nconfigfile \$prefix/grub.cfg\n" \
        "3f1b2c3d-0000-4000-8000-00000000beef" > "$w/esp/EFI/debian/grub.cfg"
      cp "$w/esp/EFI/debian/grub.cfg" "$w/esp/EFI/BOOT/grub.cfg" ;;
    sdboot)
      esp_mb=128
      mkdir -p "$w/esp/EFI/BOOT" "$w/esp/loader/entries"
      cp "$SYSTEMD_BOOT_EFI" "$w/esp/EFI/BOOT/BOOTAA64.EFI"
      cp "$KERNEL_IMAGE" "$w/esp/vmlinuz"; cp "$w/initrd.cpio.gz" "$w/esp/initrd.img"
      printf 'timeout 0\ndefault debian.conf\n' > "$w/esp/loader/loader.conf"
      printf 'title Debian GNU/Linux\nlinux /vmlinuz\ninitrd /initrd.img\noptions %s\n' "$cmdline" \
        > "$w/esp/loader/entries/debian.conf" ;;
    stub)
      mkdir -p "$w/esp/EFI/BOOT"
      cp "$KERNEL_IMAGE" "$w/esp/EFI/BOOT/BOOTAA64.EFI" ;;
    app-not-pe|app-unsupported|app-crash)
      root_mb=8
      mkdir -p "$w/esp/EFI/BOOT"
      case $kind in
        app-not-pe) printf 'A text file named BOOTAA64.EFI: no "MZ" header, so not a PE file.\n%.0s' 1 2 > "$w/esp/EFI/BOOT/BOOTAA64.EFI" ;;
        # movz x0, #3; movk x0, #0x8000, lsl #48; ret: EFI_UNSUPPORTED (error bit | 3)
        app-unsupported) tiny_efi_app "$w/esp/EFI/BOOT/BOOTAA64.EFI" 0xD2800060 0xF2F00000 0xD65F03C0 ;;
        # udf #0xefe0; ret (never reached)
        app-crash) tiny_efi_app "$w/esp/EFI/BOOT/BOOTAA64.EFI" 0x0000EFE0 0xD65F03C0 ;;
      esac ;;
    *) die "build_uefi_disk: unknown kind '$kind'" ;;
  esac
  esp_first=2048; esp_sectors=$((esp_mb * 2048))
  root_first=$((esp_first + esp_sectors)); root_sectors=$((root_mb * 2048))
  total=$(((root_first + root_sectors + 34) * 512))
  truncate -s "$total" "$out"
  sgdisk -o -n "1:$esp_first:$((root_first - 1))" -t 1:ef00 -c 1:EFI \
    -n "2:$root_first:$((root_first + root_sectors - 1))" -t 2:8300 -c 2:root "$out" >/dev/null ||
    die "sgdisk $out failed"
  # (mkfs.vfat warns that the file is larger than the volume: that is the point of --offset)
  local made
  made=$(mkfs.vfat -F 32 -n ESP --offset "$esp_first" "$out" $((esp_sectors / 2)) 2>&1) || die "mkfs.vfat $out failed: $made"
  (cd "$w/esp" && find . -mindepth 1 -type d | sed 's,^\./,,' | sort | while read -r d; do
     mmd -i "$out@@$((esp_first * 512))" "::/$d" || exit 1; done) || die "mmd $out failed"
  (cd "$w/esp" && find . -type f | sed 's,^\./,,' | sort | while read -r f; do
     mcopy -i "$out@@$((esp_first * 512))" "$f" "::/$f" || exit 1; done) || die "mcopy $out failed"
  mkfs.ext4 -q -F -U 3f1b2c3d-0000-4000-8000-00000000beef -L root -d "$w/root" -E "offset=$((root_first * 512))" \
    "$out" "$((root_sectors / 2))k" || die "mkfs.ext4 $out failed"
  rm -rf "$w"
}

# tiny_efi_app OUT WORD...: a minimal AArch64 EFI application (PE32+, machine 0xAA64, subsystem 10)
# whose code is the given 32-bit instruction words: one .text section (RVA 0x1000, file offset
# 0x200, at most 128 instructions), entry at its start, ImageBase 0 and no relocations (the code
# must be position independent; the image is not marked RELOCS_STRIPPED, so it loads anywhere).
# 16 empty data directories, no certificate. Read by the firmware's PEImage like any other image.
tiny_efi_app() {
  local out=$1 off=0x200 w; shift
  [ $# -ge 1 ] && [ $# -le 128 ] || die "tiny_efi_app: 1 to 128 instruction words"
  tiny_efi_headers "$out" 0x200 0x60000020
  for w in "$@"; do poke_le "$out" $((off)) 4 "$w"; off=$((off + 4)); done
}

# tiny_efi_app_blob OUT CODE: the same around a flat position-independent code blob (entry at its
# first byte, no relocations), in one section as large as the blob and writable too (its variables).
tiny_efi_app_blob() {
  local out=$1 code=$2 size
  size=$(( ($(stat -c %s "$code") + 0x1FF) & ~0x1FF ))
  tiny_efi_headers "$out" "$size" 0xE0000020
  dd if="$code" of="$out" bs=512 seek=1 conv=notrunc status=none
}

# tiny_efi_headers OUT SIZE FLAGS: the headers of tiny_efi_app's images, for a section of SIZE bytes
# (a multiple of 0x200) with section flags FLAGS; OUT is the headers and the section, zero-filled.
tiny_efi_headers() {
  local out=$1 size=$2 flags=$3
  head -c $((0x200 + size)) /dev/zero > "$out"
  poke_le "$out" 0 2 0x5A4D                      # "MZ"
  poke_le "$out" $((0x3C)) 4 0x40                # e_lfanew
  poke_le "$out" $((0x40)) 4 0x00004550          # "PE\0\0"
  poke_le "$out" $((0x44)) 2 0xAA64              # COFF: Machine AArch64
  poke_le "$out" $((0x46)) 2 1                   #   NumberOfSections
  poke_le "$out" $((0x54)) 2 240                 #   SizeOfOptionalHeader: 112 + 16 directories
  poke_le "$out" $((0x56)) 2 0x0022              #   EXECUTABLE_IMAGE | LARGE_ADDRESS_AWARE
  poke_le "$out" $((0x58)) 2 0x020B              # optional header (0x58): PE32+
  poke_le "$out" $((0x58 + 4)) 4 "$size"         #   SizeOfCode
  poke_le "$out" $((0x58 + 16)) 4 0x1000         #   AddressOfEntryPoint
  poke_le "$out" $((0x58 + 20)) 4 0x1000         #   BaseOfCode
  poke_le "$out" $((0x58 + 32)) 4 0x1000         #   SectionAlignment
  poke_le "$out" $((0x58 + 36)) 4 0x200          #   FileAlignment
  poke_le "$out" $((0x58 + 56)) 4 $((0x1000 + ((size + 0xFFF) & ~0xFFF)))  #   SizeOfImage
  poke_le "$out" $((0x58 + 60)) 4 0x200          #   SizeOfHeaders
  poke_le "$out" $((0x58 + 68)) 2 10             #   Subsystem: EFI application
  poke_le "$out" $((0x58 + 108)) 4 16            #   NumberOfRvaAndSizes
  printf '.text' | dd of="$out" bs=1 seek=$((0x148)) conv=notrunc status=none   # section table (0x148)
  poke_le "$out" $((0x148 + 8)) 4 "$size"        #   VirtualSize
  poke_le "$out" $((0x148 + 12)) 4 0x1000        #   VirtualAddress
  poke_le "$out" $((0x148 + 16)) 4 "$size"       #   SizeOfRawData
  poke_le "$out" $((0x148 + 20)) 4 0x200         #   PointerToRawData
  poke_le "$out" $((0x148 + 36)) 4 "$flags"      # CODE | MEM_EXECUTE | MEM_READ (| MEM_WRITE)
}
