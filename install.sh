#!/bin/sh
# Outpost installer: fetches the outpost binary for this machine, verifies its minisign signature against
# the release key below BEFORE installing anything, installs it atomically (versioned directory + symlink
# switch, previous version kept), creates the outpost user, config and systemd unit, enrolls and starts.
# POSIX sh (dash, busybox ash). Verify this script first (docs/install.md):
#   minisign -Vm install.sh -P RWRSBNmlJ7y+TIc4VMtYJ9ITJc9ZblYPND5uvLoh0Ji4DwY5Zt0umrtw
#
# Options:
#   --role=agent|gateway|controlplane  what this machine runs (default: agent)
#   --version=VERSION          install this release (default: the release named by the signed `latest`)
#   --base-url=URL             where releases are served (default: $OUTPOST_BASE_URL, else the project's)
#   --url=URL                  the control plane to enroll with (needed with an enroll token)
#   --enroll-token-file=PATH   read the enroll token from PATH
#   --enroll-token=-           read the enroll token from standard input
#   --enroll-token=TOKEN       the token itself (visible to `ps` while this runs: prefer the two above)
#   --arch=x64|arm64           override the detected CPU architecture (e.g. preparing an SD card image)
#   --prefix=DIR               install directory (default: /opt/outpost)
#   --root=DIR                 install into DIR as if it were /: no user, chown, systemctl or glibc check
#   --rollback                 switch back to the previously installed version
#   --uninstall                remove Outpost, keeping /etc/outpost and /var/lib/outpost (add --purge)
#   --purge                    with --uninstall: also remove configuration, state, cache and the user
#   -h, --help                 show this help
# Environment:
#   OUTPOST_BASE_URL           default for --base-url
#   TMPDIR                     where downloads are staged; always removed on exit
# Release layout at the base URL (docs/install.md): latest, latest.minisig, install.sh(.minisig) and per
# version VERSION/outpost-linux-{x64,arm64}, VERSION/outpost-{agent,gateway,controlplane}.service,
# VERSION/SHA256SUMS, each with a .minisig whose trusted comment is "outpost file=NAME version=VERSION".
# Exit status: 0 done, 1 failed, 64 usage error.
set -eu

main() {
  PUBKEY=RWRSBNmlJ7y+TIc4VMtYJ9ITJc9ZblYPND5uvLoh0Ji4DwY5Zt0umrtw
  BASE=${OUTPOST_BASE_URL:-https://releases.outpost.example}
  ROLE=agent VERSION='' CP_URL='' TOKEN_SRC='' TOKEN_FILE='' TOK='' ARCH='' PREFIX=/opt/outpost R='' PURGE=''
  ACTION=install TMP='' USE_SYSTEMD='' ENROLLED='' TC='' HOST_ARCH=''

  say() { printf 'outpost-install: %s\n' "$*"; }
  die() { printf 'outpost-install: error: %s\n' "$*" >&2; exit 1; }
  usage_error() { printf 'outpost-install: %s (see --help)\n' "$*" >&2; exit 64; }
  have() { command -v "$1" >/dev/null 2>&1; }
  cleanup() { if [ -n "$TMP" ]; then rm -rf "$TMP"; fi; }

  detect_platform() {
    HOST_ARCH=$(uname -m)
    case $HOST_ARCH in
      x86_64 | amd64) HOST_ARCH=x64 ;;
      aarch64 | arm64) HOST_ARCH=arm64 ;;
      armv6l | armv7l) [ -n "$ARCH" ] || die "32-bit ARM is not supported: install 64-bit Raspberry Pi OS (Bookworm or newer)" ;;
      *) [ -n "$ARCH" ] || die "unsupported CPU architecture $HOST_ARCH (x86_64 and aarch64 are)" ;;
    esac
    ARCH=${ARCH:-$HOST_ARCH}
    [ -z "$R" ] || return 0
    glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null) || die "needs glibc 2.34 or newer (Raspberry Pi OS / Debian Bookworm or newer)"
    glibc=${glibc#glibc } major=${glibc%%.*} minor=${glibc#*.}
    minor=${minor%%.*}
    if [ "$major" -lt 2 ] || { [ "$major" -eq 2 ] && [ "$minor" -lt 34 ]; }; then
      die "glibc $glibc is too old: needs 2.34 or newer (Raspberry Pi OS / Debian Bookworm or newer)"
    fi
  }

  # fetch URL FILE: downloads with curl, else wget; fails on HTTP errors and broken transfers.
  fetch() {
    if have curl; then
      curl --fail --silent --show-error --location --proto '=http,https' --output "$2" "$1"
    elif wget --help 2>&1 | grep -q -e '--tries'; then
      wget --quiet --tries=1 --output-document="$2" "$1"
    else
      wget -q -O "$2" "$1"
    fi
  }

  # fetch_verified PATH NAME VERSION: downloads BASE/PATH and its .minisig to $TMP/NAME, verifies it with the
  # embedded key and checks the signed trusted comment (binding the file name and version). Sets TC.
  fetch_verified() {
    fetch "$BASE/$1" "$TMP/$2" || die "download failed: $BASE/$1 (nothing was installed)"
    fetch "$BASE/$1.minisig" "$TMP/$2.minisig" ||
      die "download failed: $BASE/$1.minisig; unsigned files are never installed (nothing was installed)"
    TC=$(minisign -V -Q -P "$PUBKEY" -m "$TMP/$2" -x "$TMP/$2.minisig" 2>/dev/null) ||
      die "signature verification FAILED for $BASE/$1: wrong key, tampered or truncated (nothing was installed)"
    if [ -n "$3" ] && [ "$TC" != "outpost file=${1##*/} version=$3" ]; then
      die "the signature of $BASE/$1 is for \"$TC\" (nothing was installed)"
    fi
  }

  make_user() {
    [ -z "$R" ] || return 0
    have useradd || die "useradd is needed (apt install passwd)"
    getent group outpost >/dev/null || groupadd --system outpost
    getent passwd outpost >/dev/null ||
      useradd --system --gid outpost --home-dir /var/lib/outpost --no-create-home --shell /usr/sbin/nologin outpost
    if [ "$ROLE" = gateway ]; then
      getent group dialout >/dev/null || groupadd --system dialout
      usermod -a -G dialout outpost
    fi
  }

  # Puts the binary and unit in versions/VERSION/ (skipped when identical: re-runs are idempotent), checks
  # that the binary runs (there, not in a possibly noexec $TMPDIR), then switches the `current` symlink with
  # a rename (atomic) and remembers the old target as `previous`.
  install_release() {
    vdir="$OPT/versions/$VERSION" fresh=''
    [ -d "$vdir" ] || fresh=1
    mkdir -p "$vdir"
    for f in outpost "outpost-$ROLE.service"; do
      if ! cmp -s "$TMP/$f" "$vdir/$f" 2>/dev/null; then
        cp "$TMP/$f" "$vdir/$f.new"
        mv -f "$vdir/$f.new" "$vdir/$f"
      fi
    done
    chmod 0755 "$vdir/outpost"
    chmod 0644 "$vdir/outpost-$ROLE.service"
    if [ "$ARCH" = "$HOST_ARCH" ]; then
      ran=$(OUTPOST_NATIVE_CACHE="$TMP/native" "$vdir/outpost" version 2>&1) || true
      case $ran in
        "outpost $VERSION "*) ;;
        *) if [ -n "$fresh" ]; then rm -rf "$vdir"; rmdir "$OPT/versions" "$OPT" 2>/dev/null || true; fi
          die "the new binary does not run here (it said: $ran); the installed version is unchanged" ;;
      esac
    fi
    switch_to "versions/$VERSION/outpost"
    mkdir -p "$R/usr/local/bin"
    if [ ! -L "$R/usr/local/bin/outpost" ]; then
      [ ! -e "$R/usr/local/bin/outpost" ] || die "$R/usr/local/bin/outpost exists and is not ours"
      ln -s "$PREFIX/current" "$R/usr/local/bin/outpost"
    fi
    # Keep only the current and previous versions (each is about 110 MB on the SD card).
    for d in "$OPT"/versions/*; do
      case "$(readlink "$OPT/current") $(readlink "$OPT/previous" 2>/dev/null || true) " in
        *"versions/${d##*/}/outpost "*) ;;
        *) rm -rf "$d" ;;
      esac
    done
    say "installed $OPT/versions/$VERSION/outpost, linked from $R/usr/local/bin/outpost"
  }

  # switch_to TARGET: points `current` at TARGET; the old target becomes `previous`.
  switch_to() {
    old=$(readlink "$OPT/current" 2>/dev/null || true)
    [ "$old" != "$1" ] || return 0
    if [ -n "$old" ]; then
      rm -f "$OPT/previous.new"
      ln -s "$old" "$OPT/previous.new"
      mv -f "$OPT/previous.new" "$OPT/previous"
    fi
    rm -f "$OPT/current.new"
    ln -s "$1" "$OPT/current.new"
    mv -f "$OPT/current.new" "$OPT/current"
  }

  write_config() {
    mkdir -p "$R/etc/outpost"
    chmod 0750 "$R/etc/outpost"
    conf="$R/etc/outpost/$ROLE.toml"
    if [ ! -e "$conf" ]; then
      printf '# Outpost %s configuration (TOML); see docs/operations.md. Kept across upgrades.\n' "$ROLE" >"$conf.new"
      chmod 0640 "$conf.new"
      mv "$conf.new" "$conf"
      say "wrote $conf"
    fi
    if [ -z "$R" ]; then chown root:outpost "$R/etc/outpost" "$conf"; fi
  }

  install_unit() {
    mkdir -p "$R/etc/systemd/system"
    unit="$R/etc/systemd/system/outpost-$ROLE.service"
    if ! cmp -s "$OPT/versions/$VERSION/outpost-$ROLE.service" "$unit" 2>/dev/null; then
      cp "$OPT/versions/$VERSION/outpost-$ROLE.service" "$unit.new"
      chmod 0644 "$unit.new"
      mv -f "$unit.new" "$unit"
    fi
    if [ -n "$USE_SYSTEMD" ]; then
      systemctl daemon-reload
      systemctl enable "outpost-$ROLE.service"
    else
      say "systemd is not in charge here (or --root): $unit installed, not enabled"
    fi
  }

  # Hands the token to `outpost enroll` through a pipe: never on a command line, never in a file.
  enroll() {
    if [ -z "$TOKEN_SRC" ]; then
      say "no enroll token given: enrollment skipped (see the next steps below)"
      return 0
    fi
    sdir="$R/var/lib/outpost/$ROLE" cdir="$R/var/cache/outpost/$ROLE"
    mkdir -p "$sdir" "$cdir"
    chmod 0700 "$sdir" "$cdir"
    if [ -z "$R" ]; then
      chown outpost:outpost "$sdir" "$cdir"
      set -- runuser -u outpost --
    else
      set --
    fi
    printf '%s\n' "$TOK" | "$@" env STATE_DIRECTORY="$sdir" CACHE_DIRECTORY="$cdir" CONFIGURATION_DIRECTORY="$R/etc/outpost" \
      "$OPT/current" enroll --url "$CP_URL" --token-file - || die "enrollment with $CP_URL failed (outpost $VERSION is installed; re-run to retry)"
    TOK=
    ENROLLED=1
    say "enrolled with $CP_URL"
  }

  start_service() {
    [ -n "$USE_SYSTEMD" ] || return 0
    if [ -n "$ENROLLED" ] || [ "$ROLE" = controlplane ]; then
      systemctl restart "outpost-$ROLE.service"
    else
      systemctl try-restart "outpost-$ROLE.service"
    fi
    systemctl --no-pager --lines=5 status "outpost-$ROLE.service" || true
  }

  next_steps() {
    say "done: outpost $VERSION"
    say "  status:    systemctl status outpost-$ROLE    logs: journalctl -u outpost-$ROLE -f"
    say "  config:    /etc/outpost/$ROLE.toml    state: /var/lib/outpost/$ROLE"
    if [ -z "$ENROLLED" ] && [ "$ROLE" != controlplane ]; then
      say "  enroll:    outpost enroll --url URL --token-file - < token (as user outpost), then"
      say "             systemctl start outpost-$ROLE"
    fi
    say "  rollback:  sh install.sh --rollback    upgrade: re-run with --version=NEW"
  }

  rollback() {
    prev=$(readlink "$OPT/previous" 2>/dev/null) || die "no previous version to roll back to in $OPT"
    [ -x "$OPT/$prev" ] || die "the previous version $OPT/$prev is gone"
    switch_to "$prev"
    v=${prev#versions/}
    v=${v%/outpost}
    for unit in "$R"/etc/systemd/system/outpost-*.service; do
      [ -e "$unit" ] || continue
      if [ -f "$OPT/versions/$v/${unit##*/}" ]; then cp "$OPT/versions/$v/${unit##*/}" "$unit"; fi
      if [ -n "$USE_SYSTEMD" ]; then systemctl daemon-reload && systemctl try-restart "${unit##*/}"; fi
    done
    say "rolled back to outpost $v (run --rollback again to return)"
  }

  uninstall() {
    for unit in "$R"/etc/systemd/system/outpost-*.service; do
      [ -e "$unit" ] || continue
      if [ -n "$USE_SYSTEMD" ]; then systemctl disable --now "${unit##*/}" || true; fi
      rm -f "$unit"
      say "removed ${unit##*/}"
    done
    if [ -n "$USE_SYSTEMD" ]; then systemctl daemon-reload; fi
    if [ "$(readlink "$R/usr/local/bin/outpost" 2>/dev/null)" = "$PREFIX/current" ]; then rm -f "$R/usr/local/bin/outpost"; fi
    if [ -d "$OPT/versions" ]; then rm -rf "$OPT"; fi
    if [ -n "$PURGE" ]; then
      rm -rf "$R/etc/outpost" "$R/var/lib/outpost" "$R/var/cache/outpost" "$R"/etc/credstore.encrypted/outpost-*
      if [ -z "$R" ] && getent passwd outpost >/dev/null; then userdel outpost; fi
      say "removed Outpost, its configuration, state and user"
    else
      say "removed Outpost; kept $R/etc/outpost and $R/var/lib/outpost (--uninstall --purge removes them)"
    fi
  }

  for arg in "$@"; do
    case $arg in
      --role=*) ROLE=${arg#*=} ;;
      --version=*) VERSION=${arg#*=} ;;
      --base-url=*) BASE=${arg#*=} ;;
      --url=*) CP_URL=${arg#*=} ;;
      --enroll-token-file=*) TOKEN_SRC=file TOKEN_FILE=${arg#*=} ;;
      --enroll-token=-) TOKEN_SRC=stdin ;;
      --enroll-token=*) TOKEN_SRC=value TOK=${arg#*=} ;;
      --arch=*) ARCH=${arg#*=} ;;
      --prefix=*) PREFIX=${arg#*=} ;;
      --root=*) R=${arg#*=} ;;
      --rollback) ACTION=rollback ;;
      --uninstall) ACTION=uninstall ;;
      --purge) PURGE=1 ;;
      -h | --help) sed -n '2,/^set -eu$/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
      *) usage_error "unknown option: $arg" ;;
    esac
  done

  case $ROLE in agent | gateway | controlplane) ;; *) usage_error "--role must be agent, gateway or controlplane" ;; esac
  case $ARCH in '' | x64 | arm64) ;; *) usage_error "--arch must be x64 or arm64" ;; esac
  case $VERSION in *[!0-9A-Za-z.+-]* | .*) usage_error "bad --version: $VERSION" ;; esac
  PREFIX=${PREFIX%/}
  case $PREFIX in /?*) ;; *) usage_error "--prefix must be an absolute directory other than /" ;; esac
  case $PREFIX in *..* | *//*) usage_error "--prefix must not contain .. or //" ;; esac
  if [ -n "$R" ]; then
    case $R in /*) ;; *) usage_error "--root must be an absolute path" ;; esac
    [ -d "$R" ] || usage_error "--root directory $R does not exist"
  elif [ "$(id -u)" != 0 ]; then
    die "run as root (sudo sh install.sh ...), or use --root=DIR to stage into a directory"
  fi
  [ -z "$PURGE" ] || [ "$ACTION" = uninstall ] || usage_error "--purge goes with --uninstall"
  BASE=${BASE%/}
  OPT="$R$PREFIX"
  if [ -z "$R" ] && have systemctl && [ -d /run/systemd/system ]; then USE_SYSTEMD=1; fi

  # Reads the enroll token now, before anything is downloaded, so a bad token source fails early.
  case $TOKEN_SRC in
    file) [ -r "$TOKEN_FILE" ] || die "cannot read the enroll token file $TOKEN_FILE"
      IFS= read -r TOK <"$TOKEN_FILE" || [ -n "$TOK" ] || die "the enroll token file is empty" ;;
    stdin) IFS= read -r TOK || [ -n "$TOK" ] || die "no enroll token on standard input" ;;
  esac
  if [ -n "$TOKEN_SRC" ]; then
    case $TOK in '' | *[[:space:]]*) die "the enroll token is empty or contains white space" ;; esac
    [ -n "$CP_URL" ] || usage_error "--url=URL (the control plane) is needed to enroll"
  fi

  case $ACTION in
    uninstall) uninstall; exit 0 ;;
    rollback) rollback; exit 0 ;;
  esac

  have minisign || die "minisign is needed to verify the download: apt install minisign (nothing was installed)"
  have curl || have wget || die "curl or wget is needed: apt install curl (nothing was installed)"
  detect_platform
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM HUP
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/outpost-install.XXXXXX")

  if [ -z "$VERSION" ]; then
    fetch_verified latest latest ''
    IFS= read -r VERSION <"$TMP/latest" || true
    case $VERSION in '' | *[!0-9A-Za-z.+-]* | .*) die "the signed latest pointer is malformed" ;; esac
    [ "$TC" = "outpost file=latest version=$VERSION" ] || die "latest's signature is for \"$TC\", not version $VERSION"
  fi
  say "installing outpost $VERSION (linux-$ARCH, role $ROLE) from $BASE"
  fetch_verified "$VERSION/outpost-linux-$ARCH" outpost "$VERSION"
  fetch_verified "$VERSION/outpost-$ROLE.service" "outpost-$ROLE.service" "$VERSION"

  # Verified: from here on the machine changes.
  make_user
  install_release
  write_config
  install_unit
  enroll
  start_service
  next_steps
}

main "$@"
