#!/usr/bin/env bash
# Install a released evidence CLI (checksum verified, cached) and run it.
#
#   run.sh                 install only; prints the binary's directory
#   run.sh ARGS...         install, then run: evidence ARGS...
#
# EVIDENCE_VERSION      the release to install, e.g. 1.4.0 (required unless
#                       evidence is already on PATH and EVIDENCE_VERSION is empty)
# EVIDENCE_RELEASE_URL  where the releases are (default
#                       https://github.com/evidencepipeline/evidence/releases/download);
#                       the archive is $EVIDENCE_RELEASE_URL/vVERSION/evidence_VERSION_OS_ARCH.tar.gz
#                       beside checksums.txt
# EVIDENCE_CACHE_DIR    where installed versions are kept (default
#                       ${XDG_CACHE_HOME:-$HOME/.cache}/evidence); cache it between jobs
#
# Used as is by the GitHub Action (action.yml) and the Jenkins step
# (vars/evidence.groovy); the GitLab component (templates/evidence.yml)
# carries the same steps inline.
set -euo pipefail

die() { echo "evidence-install: $*" >&2; exit 2; }

exe=evidence
version="${EVIDENCE_VERSION:-}"
version="${version#v}"
if [ -z "$version" ]; then
  if command -v evidence >/dev/null 2>&1; then
    bin="$(dirname "$(command -v evidence)")"
  else
    die "no version to install: set EVIDENCE_VERSION (the version input), e.g. 1.4.0"
  fi
else
  case "$version" in
    *[!0-9A-Za-z.+-]*) die "version \"$version\" is not a release version (digits, letters, . + -)";;
  esac
  case "$(uname -s)" in
    Linux) os=linux;; Darwin) os=darwin;; MINGW*|MSYS*|CYGWIN*) os=windows;;
    *) die "unsupported OS $(uname -s)";;
  esac
  case "$(uname -m)" in
    x86_64|amd64) arch=amd64;; aarch64|arm64) arch=arm64;;
    *) die "unsupported architecture $(uname -m)";;
  esac
  base="${EVIDENCE_RELEASE_URL:-https://github.com/evidencepipeline/evidence/releases/download}"
  cache="${EVIDENCE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/evidence}"
  bin="$cache/$version/${os}_$arch"
  exe=evidence; [ "$os" = windows ] && exe=evidence.exe
  if [ ! -x "$bin/$exe" ]; then
    archive="evidence_${version}_${os}_$arch.tar.gz"
    [ "$os" = windows ] && archive="evidence_${version}_${os}_$arch.zip"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    fetch() {
      if command -v curl >/dev/null 2>&1; then curl -fsSL --retry 3 -o "$2" "$1"
      else wget -q -O "$2" "$1"; fi
    }
    fetch "$base/v$version/$archive" "$tmp/$archive" || die "could not download $base/v$version/$archive"
    fetch "$base/v$version/checksums.txt" "$tmp/checksums.txt" || die "could not download $base/v$version/checksums.txt"
    want="$(awk -v f="$archive" '$2 == f || $2 == "*" f {print $1}' "$tmp/checksums.txt")"
    [ -n "$want" ] || die "checksums.txt of v$version lists no $archive"
    if command -v sha256sum >/dev/null 2>&1; then got="$(sha256sum "$tmp/$archive" | awk '{print $1}')"
    else got="$(shasum -a 256 "$tmp/$archive" | awk '{print $1}')"; fi
    [ "$got" = "$want" ] || die "checksum mismatch for $archive: got sha256 $got, checksums.txt says $want"
    mkdir -p "$tmp/x"
    if [ "$os" = windows ]; then unzip -q "$tmp/$archive" -d "$tmp/x"; else tar -xzf "$tmp/$archive" -C "$tmp/x"; fi
    [ -f "$tmp/x/$exe" ] || die "$archive has no $exe"
    mkdir -p "$bin"
    chmod +x "$tmp/x/$exe"
    mv "$tmp/x/$exe" "$bin/$exe"
    echo "evidence-install: installed evidence $version ($os/$arch, sha256 $got) in $bin" >&2
  fi
fi

if [ "$#" -eq 0 ]; then
  echo "$bin"
  exit 0
fi
exec "$bin/$exe" "$@"
