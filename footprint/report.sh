#!/usr/bin/env bash
# Footprint of cellular-ota's HTTP update path (see README.md in this directory).
#
#   footprint/report.sh            all variants: opt-level s and z, and a constant-config
#                                  build; peak stack of each under QEMU
#   footprint/report.sh --quick    opt-level s only
#   footprint/report.sh --stack-sizes
#                                  also: the largest stack frames from rustc's
#                                  -Z emit-stack-sizes (needs nightly; a cross-check)
#   footprint/report.sh --quick --check
#                                  CI's guard: fails when the update path's flash or the
#                                  total RAM of the opt-level s build is more than 2 % above
#                                  the figures committed in README.md (the "Committed
#                                  figures" block); needs QEMU for the RAM
#   footprint/report.sh --quick --write
#                                  rewrites that block with this run's figures
#
# Installs what it needs (thumbv7em target, llvm-tools, qemu-system-arm via apt-get when
# run as root) and skips only the QEMU run if QEMU cannot be had. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")"

TARGET=thumbv7em-none-eabihf
QUICK=0
STACK_SIZES=0
CHECK=0
WRITE=0
# Growth allowed over the committed figures before --check fails, in percent.
TOLERANCE_PERCENT=2
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    --stack-sizes) STACK_SIZES=1 ;;
    --check) CHECK=1 ;;
    --write) WRITE=1 ;;
    *) echo "unknown argument: $a" >&2; exit 2 ;;
  esac
done

log() { printf '==> %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------- tools
rustup target add "$TARGET" > /dev/null 2>&1 || true
rustup component add llvm-tools > /dev/null 2>&1 || rustup component add llvm-tools-preview > /dev/null 2>&1 || true
HOST=$(rustc -vV | sed -n 's/^host: //p')
LLVM_BIN="$(rustc --print sysroot)/lib/rustlib/$HOST/bin"
if [[ -x "$LLVM_BIN/llvm-size" ]]; then
  SIZE="$LLVM_BIN/llvm-size"
  NM="$LLVM_BIN/llvm-nm"
elif command -v llvm-size > /dev/null; then
  SIZE=llvm-size
  NM=llvm-nm
else
  echo "no llvm-size: install rustup's llvm-tools component or LLVM" >&2
  exit 1
fi

SUDO=""
[[ $(id -u) == 0 ]] || { command -v sudo > /dev/null && sudo -n true 2> /dev/null && SUDO=sudo; }
if ! command -v qemu-system-arm > /dev/null && { [[ $(id -u) == 0 ]] || [[ -n $SUDO ]]; } && command -v apt-get > /dev/null; then
  log "installing qemu-system-arm"
  $SUDO apt-get install -y qemu-system-arm > /dev/null 2>&1 ||
    { $SUDO apt-get update > /dev/null 2>&1 && $SUDO apt-get install -y qemu-system-arm > /dev/null 2>&1; } || true
fi
HAVE_QEMU=0
command -v qemu-system-arm > /dev/null && HAVE_QEMU=1
[[ $HAVE_QEMU == 1 ]] || log "qemu-system-arm not available: peak stack is not measured"
if [[ $HAVE_QEMU == 0 ]] && [[ $CHECK == 1 || $WRITE == 1 ]]; then
  echo "--check and --write need qemu-system-arm (the RAM figure includes the measured stack)" >&2
  exit 1
fi

OUT=target/report
mkdir -p "$OUT"

# ---------------------------------------------------------------------------- helpers
# build NAME OPT FEATURES -> $OUT/NAME.elf (one target dir per opt-level keeps caches warm)
build() {
  local name=$1 opt=$2 features=$3
  log "building $name (opt-level $opt, features: ${features:-none})"
  local nodefault=()
  # The smallest build links the library without its optional features.
  [[ $features == *smallest* ]] && nodefault=(--no-default-features)
  CARGO_PROFILE_RELEASE_OPT_LEVEL=$opt CARGO_TARGET_DIR="target/opt-$opt" \
    cargo build --quiet --release --target "$TARGET" "${nodefault[@]}" --features "$features"
  cp "target/opt-$opt/$TARGET/release/footprint" "$OUT/$name.elf"
}

# section ELF NAME -> size in bytes (0 if absent)
section() {
  "$SIZE" -A "$1" | awk -v s="$2" '$1 == s { print $2; found = 1 } END { if (!found) print 0 }'
}

# run ELF -> QEMU's output (the firmware prints its stack figures over semihosting)
run_qemu() {
  timeout 120 qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic \
    -monitor none -serial none -semihosting-config enable=on,target=native -kernel "$1"
}

# ---------------------------------------------------------------------------- builds
# name|opt|features|label
VARIANTS=("s|s||opt-level s")
# The smallest useful build: the library without optional features, configured unsigned.
VARIANTS+=("small|s|smallest|opt-level s, smallest (stream only, unsigned)")
if [[ $QUICK == 0 ]]; then
  VARIANTS+=(
    "z|z||opt-level z"
    "s-fixed|s|fixed-config|opt-level s, constant UpdateConfig"
  )
fi

ROWS=()
MEASURED=()
for v in "${VARIANTS[@]}"; do
  IFS='|' read -r name opt features label <<< "$v"
  build "$name" "$opt" "$features"
  base_features="baseline${features:+,$features}"
  build "$name-baseline" "$opt" "$base_features"

  elf="$OUT/$name.elf"
  base="$OUT/$name-baseline.elf"
  text=$(section "$elf" .text)
  rodata=$(section "$elf" .rodata)
  data=$(section "$elf" .data)
  bss=$(section "$elf" .bss)
  vt=$(section "$elf" .vector_table)
  testdata=$(section "$elf" .testdata)
  btext=$(section "$base" .text)
  brodata=$(section "$base" .rodata)
  bdata=$(section "$base" .data)
  path_flash=$((text + rodata + data - btext - brodata - bdata))

  peak="n/a"
  flow="n/a"
  ram="n/a"
  if [[ $HAVE_QEMU == 1 ]]; then
    log "running $name under QEMU"
    if qemu_out=$(run_qemu "$elf" 2>&1); then
      peak=$(sed -n 's/^peak stack: \([0-9]*\) bytes$/\1/p' <<< "$qemu_out")
      flow=$(sed -n 's/^flow below the call: \([0-9]*\) bytes$/\1/p' <<< "$qemu_out")
      ram=$((data + bss + peak))
      printf '%s\n' "$qemu_out" | sed "s/^/    [$name] /" >&2
    else
      printf '%s\n' "$qemu_out" >&2
      echo "the QEMU run of $name failed" >&2
      exit 1
    fi
  fi
  ROWS+=("| $label | $text | $rodata | $data | $bss | $path_flash | $flow | $peak | $ram |")
  [[ $name == s ]] && S_ELF=$elf && S_VT=$vt && S_TESTDATA=$testdata
  MEASURED+=("$label|$path_flash|$ram")
  [[ $name == z ]] && Z_ELF=$elf
done

PHASES=""
if [[ $HAVE_QEMU == 1 && $CHECK == 0 ]]; then
  build s-phases s phases
  log "running s-phases under QEMU"
  PHASES=$(run_qemu "$OUT/s-phases.elf" | sed -n 's/^phase //p')
fi

# ---------------------------------------------------------------------------- report
echo
echo "## Footprint firmware ($TARGET), $(date -u +%Y-%m-%d)"
echo
echo "cellular-ota $(git -C .. rev-parse --short HEAD 2> /dev/null || echo '?')$(git -C .. diff --quiet HEAD -- ../src ../Cargo.toml 2> /dev/null || echo ' + uncommitted changes'), $(rustc --version)"
echo
echo "| build | .text | .rodata | .data | .bss | update path flash | flow stack | peak stack | total RAM |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
echo
echo "Bytes. update path flash = (.text + .rodata + .data) minus the same of the baseline build"
echo "(same runtime, stubs and test data, no update call). .bss holds the caller's buffers"
echo "(rx 1024 + response 256 + chunk 4096). peak stack = deepest stack word written since"
echo "reset (stack painting under QEMU mps2-an386), including main's frame (client, sink,"
echo "config); flow stack = the part below update_blocking's call site."
echo "total RAM = .data + .bss + peak stack. Not counted: .vector_table (${S_VT:-?} bytes) and"
echo ".testdata (${S_TESTDATA:-?} bytes: the scripted modem conversation, the test image, the"
echo "partition table), present in every build."
echo
if [[ -n $PHASES ]]; then
  echo "### Stack peak per phase of the flow (opt-level s, feature \`phases\`), bytes below the update_blocking call"
  echo
  echo '```'
  printf '%s\n' "$PHASES"
  echo '```'
  echo
fi
for pair in "s|${S_ELF:-}" "z|${Z_ELF:-}"; do
  IFS='|' read -r name elf <<< "$pair"
  [[ -n $elf ]] || continue
  echo "### Flash by crate and module, $name (symbol sizes; main's inlined code counts for footprint)"
  echo
  echo '```'
  python3 tools/symbols.py "$NM" "$elf" --modules | awk '$1 >= 200 || /total/'
  echo '```'
  echo
done

# ---------------------------------------------------------------------------- ESP32-C3 example
EX=../examples/esp32s3-7semi/target/riscv32imc-unknown-none-elf/release
if [[ -f $EX/ota_update ]]; then
  echo "### cellular-ota's share of the ESP32-C3 example image (examples/esp32s3-7semi, built by its ci-build.sh)"
  echo
  echo "| binary | image (flash) | cellular_ota | + ed25519_compact, sha2, md5, crc, digest | share | main + anonymous constants (mixed, not attributed) |"
  echo "|---|---:|---:|---:|---:|---:|"
  for bin in ota_update ota_update_async modem_fota; do
    elf=$EX/$bin
    [[ -f $elf ]] || continue
    image=$("$SIZE" -A "$elf" | awk '$1 ~ /^\.(trap|rwtext|data|flash\.appdesc|rodata|text)$/ { s += $2 } END { print s }')
    by=$(python3 tools/symbols.py "$NM" "$elf")
    lib=$(awk '$2 == "cellular_ota" { s += $1 } END { print s + 0 }' <<< "$by")
    deps=$(awk '$2 ~ /^(ed25519_compact|sha2|md5|crc|digest|block_buffer)$/ { s += $1 } END { print s + 0 }' <<< "$by")
    mixed=$(awk '$0 ~ /\(other: main\)|\(anonymous constants\)/ { s += $1 } END { print s + 0 }' <<< "$by")
    share=$(awk -v a="$((lib + deps))" -v b="$image" 'BEGIN { printf "%.0f %%", 100 * a / b }')
    echo "| $bin | $image | $lib | $((lib + deps)) | $share | $mixed |"
  done
  echo
else
  echo "(ESP32-C3 example not built: run examples/esp32s3-7semi/ci-build.sh for its share)"
fi

# ---------------------------------------------------------------------------- -Z emit-stack-sizes
if [[ $STACK_SIZES == 1 ]]; then
  rustup toolchain install nightly --profile minimal > /dev/null 2>&1 || true
  rustup +nightly target add "$TARGET" > /dev/null 2>&1 || true
  log "building with -Z emit-stack-sizes (nightly)"
  RUSTFLAGS="-Z emit-stack-sizes" CARGO_TARGET_DIR=target/stack-sizes \
    cargo +nightly build --quiet --release --target "$TARGET"
  echo "### Largest stack frames (rustc -Z emit-stack-sizes, nightly, opt-level s; per function, not a call-graph sum)"
  echo
  echo '```'
  "$LLVM_BIN/llvm-readobj" --stack-sizes "target/stack-sizes/$TARGET/release/footprint" 2> /dev/null |
    python3 -c '
import re, sys
t = sys.stdin.read()
e = sorted(((int(s, 16), f) for f, s in re.findall(r"Functions: \[(.*?)\]\s*Size: (0x[0-9A-Fa-f]+)", t)), reverse=True)
for s, f in e[:12]:
    print(f"{s:7d}  {f}")
' | { if command -v llvm-cxxfilt > /dev/null; then llvm-cxxfilt; else cat; fi; } | cut -c1-150
  echo '```'
fi

# ---------------------------------------------------------------------------- committed figures
BEGIN_MARK='<!-- committed figures: begin (footprint/report.sh --quick --write) -->'
END_MARK='<!-- committed figures: end -->'
if [[ $WRITE == 1 ]]; then
  python3 - "$BEGIN_MARK" "$END_MARK" "$(git -C .. rev-parse --short HEAD 2> /dev/null || echo '?')" "$(rustc --version)" "${ROWS[@]}" << 'PY'
import sys
begin, end, rev, rustc, *rows = sys.argv[1:]
text = open("README.md").read()
i, j = text.index(begin), text.index(end)
block = (begin + "\n\n" + f"Measured on the tree after `{rev}`, {rustc}, `report.sh --quick`.\n\n"
         "| build | .text | .rodata | .data | .bss | update path flash | flow stack | peak stack | total RAM |\n"
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n\n")
open("README.md", "w").write(text[:i] + block + text[j:])
PY
  log "footprint/README.md: committed figures rewritten"
fi
if [[ $CHECK == 1 ]]; then
  fail=0
  for m in "${MEASURED[@]}"; do
    IFS='|' read -r label flash ram <<< "$m"
    committed=$(awk -v b="$BEGIN_MARK" -v e="$END_MARK" -v l="| $label |" \
      '$0 == b { on = 1 } $0 == e { on = 0 } on && index($0, l) == 1' README.md)
    if [[ -z $committed ]]; then
      echo "FOOTPRINT GUARD: footprint/README.md has no committed row '$label' between its markers" >&2
      fail=1
      continue
    fi
    c_flash=$(awk -F'|' '{ gsub(/ /, "", $7); print $7 }' <<< "$committed")
    c_ram=$(awk -F'|' '{ gsub(/ /, "", $10); print $10 }' <<< "$committed")
    for pair in "update path flash|$flash|$c_flash" "total RAM|$ram|$c_ram"; do
      IFS='|' read -r what now was <<< "$pair"
      limit=$((was + was * TOLERANCE_PERCENT / 100))
      if ((now > limit)); then
        echo "FOOTPRINT GUARD: $label: $what is $now bytes, committed $was (limit $limit, +$TOLERANCE_PERCENT %)" >&2
        fail=1
      else
        echo "footprint guard: $label: $what $now bytes, committed $was (limit $limit): ok"
      fi
    done
  done
  if ((fail)); then
    echo "Shrink it back, or, if the growth is worth it, rerun footprint/report.sh --quick --write" >&2
    echo "and say why in footprint/README.md." >&2
    exit 1
  fi
fi
