#!/usr/bin/env bash
# Builds the 7Semi example firmware for ESP32-C3 (the same source as the ESP32-S3 board,
# compiled on stable Rust; the S3 needs the espup Xtensa toolchain, see README.md) and
# checks that the three ELF files exist. Run from anywhere.
#
# Three builds: with the optional `uart-dma` feature (the modem UART received by DMA; see
# README.md, "UART DMA"), the SIM7600 configuration (feature `sim7600`: the tutorial's ESP32
# + SIMCom SIM7600 wiring, update over `cellular_ota::simcom`; no `modem_fota`), then the
# default one. All write the same ELF paths, so the default build runs last and its ELFs are
# the ones left in target/.
set -euo pipefail
cd "$(dirname "$0")"

target=riscv32imc-unknown-none-elf
rustup target add "$target"

status=0

# build_and_report LABEL FEATURES [BIN...]: builds the binaries (default: all three) with
# FEATURES and prints their sizes.
build_and_report() {
  local label=$1 features=$2
  shift 2
  local bins=("$@")
  if [[ ${#bins[@]} -eq 0 ]]; then
    bins=(ota_update ota_update_async modem_fota)
  fi
  local bin_args=()
  for bin in "${bins[@]}"; do
    bin_args+=(--bin "$bin")
  done
  echo "== $label build (--features $features, ${bins[*]})"
  local start
  start=$(date +%s)
  # A binary of an earlier build must not count as this one's.
  for bin in "${bins[@]}"; do
    rm -f "target/$target/release/$bin"
  done
  cargo build --release --no-default-features --features "$features" --target "$target" "${bin_args[@]}"
  echo "build took $(( $(date +%s) - start )) s"

  for bin in "${bins[@]}"; do
    elf="target/$target/release/$bin"
    if [[ -f "$elf" ]]; then
      printf '%-18s %9d bytes (ELF with debug info)\n' "$bin" "$(stat -c %s "$elf")"
    else
      echo "missing: $elf" >&2
      status=1
    fi
  done
  # Size of what goes into flash (code, read-only data, initialised RAM contents); `size`'s
  # "text" column would also count the stack reservation.
  if command -v llvm-size > /dev/null; then
    for bin in "${bins[@]}"; do
      elf="target/$target/release/$bin"
      [[ -f "$elf" ]] || continue
      llvm-size -A "$elf" | awk -v b="$bin" '
        $1 ~ /^\.(trap|rwtext|data|flash\.appdesc|rodata|text)$/ { s += $2 }
        END { printf "%-18s %9d bytes loaded into flash\n", b, s }'
    done
  fi
  # The app image an update would download (only if espflash is installed; not kept).
  if command -v espflash > /dev/null; then
    local tmp
    tmp=$(mktemp -d)
    for bin in "${bins[@]}"; do
      elf="target/$target/release/$bin"
      [[ -f "$elf" ]] || continue
      if espflash save-image --chip esp32c3 "$elf" "$tmp/$bin.bin" > /dev/null 2>&1; then
        printf '%-18s %9d bytes app image (espflash save-image)\n' "$bin" "$(stat -c %s "$tmp/$bin.bin")"
      else
        echo "espflash save-image failed for $bin" >&2
        status=1
      fi
    done
    rm -rf "$tmp"
  fi
}

build_and_report "UART DMA" "esp32c3,uart-dma"
build_and_report "SIM7600" "esp32c3,sim7600" ota_update ota_update_async
build_and_report "default" "esp32c3"
exit "$status"
