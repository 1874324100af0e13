#!/bin/sh
# Run on the core device, as root, before the Greengrass installer: `sudo sh preflight.sh`.
# Checks what this kit's components need from the device and says how to fix each miss; exits 1 if any check
# fails. POSIX sh only: a fresh Raspberry Pi OS or Ubuntu has nothing else to run it with.
#   GREENGRASS_ROOT  where the nucleus will live (default /greengrass/v2), for the free-disk check
#   MIN_FREE_MB      free space wanted there and under Docker's root (default 2048: the subscriber image and two
#                    versions of its artifacts)
set -u

GREENGRASS_ROOT=${GREENGRASS_ROOT:-/greengrass/v2}
MIN_FREE_MB=${MIN_FREE_MB:-2048}
failed=0

ok() { printf 'ok    %s\n' "$1"; }
fail() {
  printf 'FAIL  %s\n      fix: %s\n' "$1" "$2"
  failed=$((failed + 1))
}
warn() { printf 'warn  %s\n      %s\n' "$1" "$2"; }
has() { command -v "$1" >/dev/null 2>&1; }

# Free MB on the filesystem holding $1, or its nearest existing parent (the folder may not exist yet). Parents by
# the shell's own expansion: a device without dirname must still end this loop.
free_mb() {
  dir=$1
  while [ ! -d "$dir" ]; do
    parent=${dir%/*}
    if [ "$parent" = "$dir" ]; then dir=.; elif [ -z "$parent" ]; then dir=/; else dir=$parent; fi
  done
  df -Pm "$dir" 2>/dev/null | awk 'NR == 2 { print $4 }'
}

# 1. A 64-bit userland: the recipes' manifests are amd64 and aarch64; a 32-bit Raspberry Pi OS on a 64-bit
#    kernel reports aarch64 from uname but matches no image.
bits=$(getconf LONG_BIT 2>/dev/null || echo unknown)
machine=$(uname -m)
if [ "$bits" = 64 ]; then
  ok "64-bit userland ($machine)"
else
  fail "64-bit userland: this one is ${bits}-bit on $machine" \
    "install the 64-bit OS image (Raspberry Pi OS 64-bit, Ubuntu arm64 or amd64)"
fi

# 2. Java for the nucleus (8 or later; the installer is a jar).
if has java; then
  version=$(java -version 2>&1 | awk -F'"' '/version/ { print $2; exit }')
  major=$(printf '%s' "$version" | awk -F. '{ print ($1 == 1) ? $2 : $1 }')
  if [ -n "$major" ] && [ "$major" -ge 8 ] 2>/dev/null; then
    ok "Java $version"
  else
    fail "Java 8 or later: found '${version:-unknown}'" "sudo apt-get install -y default-jre-headless"
  fi
else
  fail "Java: not found" "sudo apt-get install -y default-jre-headless"
fi

# 3. sudo: the nucleus runs every lifecycle step through `sudo -u ggc_user`, and RequiresPrivilege steps as root.
if has sudo; then ok "sudo"; else fail "sudo: not found" "sudo apt-get install -y sudo"; fi

# 4. Python for the publisher (its wheels are built for CPython 3.11).
if has python3 && python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  ok "python3 $(python3 -c 'import platform; print(platform.python_version())')"
elif has python3; then
  fail "python3 3.11 or later: found $(python3 -c 'import platform; print(platform.python_version())')" \
    "use Raspberry Pi OS bookworm / Ubuntu 24.04 or later, or install python3.11 as python3"
else
  fail "python3: not found" "sudo apt-get install -y python3"
fi

# 5. Docker, from apt and running. The snap's confinement cannot bind-mount /greengrass/v2 paths into a
#    container, and the subscriber mounts its model and the IPC socket from there.
docker_up=0
if ! has docker; then
  fail "Docker: not found" "sudo apt-get install -y docker.io && sudo systemctl enable --now docker"
else
  case $(command -v docker) in
    /snap/*) fail "Docker is the snap ($(command -v docker)): it cannot mount /greengrass/v2 paths" \
      "sudo snap remove docker && sudo apt-get install -y docker.io" ;;
    *) if docker info >/dev/null 2>&1; then
         docker_up=1
         ok "Docker engine $(docker version --format '{{.Server.Version}}' 2>/dev/null)"
       elif [ "$(id -u)" != 0 ]; then
         fail "Docker: this user cannot reach the engine" "run this script as root: sudo sh $0"
       else
         fail "Docker: the engine does not answer" "sudo systemctl enable --now docker"
       fi ;;
  esac
fi

# 6. The component user. The kit's docker steps run as root (RequiresPrivilege), so ggc_user needs no docker
#    group, which would make it root-equivalent on the device. The installer creates ggc_user:ggc_group when
#    they are missing (--component-default-user ggc_user:ggc_group).
if id ggc_user >/dev/null 2>&1; then
  if id -nG ggc_user | tr ' ' '\n' | grep -qx docker; then
    warn "ggc_user is in the docker group" \
      "that lets every component of every user become root; this kit does not need it: sudo gpasswd -d ggc_user docker"
  fi
  ok "ggc_user ($(id ggc_user))"
else
  ok "ggc_user: absent, the installer creates it (--component-default-user ggc_user:ggc_group)"
fi

# 7. The memory cgroup, or `docker run --memory` is dropped with a warning (Raspberry Pi OS ships it off).
memory=no
if [ "$docker_up" = 1 ]; then
  [ "$(docker info --format '{{.MemoryLimit}}' 2>/dev/null)" = true ] && memory=yes
elif grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null || [ -d /sys/fs/cgroup/memory ]; then
  memory=yes
fi
if [ "$memory" = yes ]; then
  ok "memory cgroup"
else
  fail "memory cgroup: off (the subscriber's memory limit would be ignored)" \
    "append 'cgroup_enable=memory cgroup_memory=1' to /boot/firmware/cmdline.txt (Raspberry Pi OS) and reboot"
fi

# 8. Free disk where the nucleus keeps artifacts and where Docker keeps images.
for place in "$GREENGRASS_ROOT" "$( [ "$docker_up" = 1 ] && docker info --format '{{.DockerRootDir}}' 2>/dev/null)"; do
  [ -n "$place" ] || continue
  free=$(free_mb "$place")
  if [ "${free:-0}" -ge "$MIN_FREE_MB" ]; then
    ok "free disk under $place: ${free} MB"
  else
    fail "free disk under $place: ${free:-0} MB, the subscriber needs ${MIN_FREE_MB} MB" \
      "free space on that filesystem, or put it on a larger disk"
  fi
done

# 9. The clock: TLS to AWS IoT fails on a clock before the certificates' validity (a Pi has no RTC).
year=$(date -u +%Y)
if [ "$year" -ge 2025 ]; then
  ok "clock ($(date -u +%Y-%m-%dT%H:%MZ))"
else
  fail "clock: $(date -u) is in the past, certificates will not verify" "sudo timedatectl set-ntp true"
fi

if [ "$failed" -gt 0 ]; then
  printf '\n%s check(s) failed: fix them, then run this again before the installer.\n' "$failed"
  exit 1
fi
printf '\nthis device is ready for the Greengrass installer (make device THING=<name> prints its command).\n'
