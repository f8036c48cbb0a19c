#!/usr/bin/env python3
"""Judge an ESP flash image or app image with Espressif's esptool, without cellular-ota's code.

    esp_judge.py --chip esp32s3 flash FLASH.bin     # a whole flash (simulated_ota --flash-out)
    esp_judge.py --chip esp32c3 app APP.bin         # one app image (espflash save-image output)

`app`: esptool's own image parser (`esptool.bin_image.LoadFirmwareImage`) reads the image;
the result says whether its checksum and appended SHA-256 are valid, its chip id, its length
and SHA-256 (of all its bytes, digest included), and each segment with esptool's memory type
for its address (a segment esptool places in no memory of the chip is `unknown`).

`flash`: the partition table at 0x8000 (records `AA 50`, the MD5 record `EB EB`) and the two
otadata entries choose the slot as the ESP-IDF bootloader does (esp-idf-ota.md §3.4: the
valid entry with the higher sequence, `(seq - 1) % ota_count`; none valid: factory, else
ota_0), then esptool judges that slot's image; an invalid one falls back counting down to
factory, then up through the other OTA slots, as the bootloader does. This is a third,
independent implementation of the slot choice (besides the library's and the simulator's);
the image checks are esptool's.

Prints one JSON object. Exit status 0 when an image boots (flash) or the image is valid
(app), 1 otherwise, 2 on a usage error or when esptool is missing.
"""
import argparse
import hashlib
import json
import struct
import sys
import zlib

try:
    from esptool.bin_image import LoadFirmwareImage
except ImportError:  # pragma: no cover - reported to the caller
    print(json.dumps({"error": "esptool is not installed: pip install esptool"}))
    sys.exit(2)

TABLE_OFFSET = 0x8000
TABLE_LEN = 0xC00


def judge_app(chip, data):
    """esptool's verdict on the app image at the start of `data` (extra bytes ignored)."""
    try:
        img = LoadFirmwareImage(chip, data)
    except Exception as e:  # esptool raises FatalError, RuntimeError or struct.error
        return {"valid": False, "error": f"{type(e).__name__}: {e}"}
    checksum_valid = img.checksum == img.calculate_checksum()
    length = img.data_length + (32 if img.append_digest else 0)
    sha_valid = bool(img.append_digest) and img.stored_digest == img.calc_digest
    chip_ok = img.chip_id == img.ROM_LOADER.IMAGE_CHIP_ID
    segments = []
    placed = True
    for s in img.segments:
        types = s.get_memory_type(img)
        if s.addr == 0:
            kind = "PADDING"
        elif types:
            kind = ",".join(types)
        else:
            kind = "unknown"
            placed = False
        segments.append({"addr": s.addr, "len": len(s.data), "type": kind})
    return {
        "valid": checksum_valid and sha_valid and chip_ok and placed and length <= len(data),
        "checksum_valid": checksum_valid,
        "sha256_valid": sha_valid,
        "chip_id": img.chip_id,
        "chip_id_valid": chip_ok,
        "segments_placed": placed,
        "len": length,
        "sha256": hashlib.sha256(data[:length]).hexdigest(),
        "segments": segments,
    }


def ota_crc(seq):
    # esp_rom_crc32_le(UINT32_MAX, &seq, 4) == zlib.crc32(seq, 0xFFFFFFFF) (esp-idf-ota.md §3.3)
    return zlib.crc32(struct.pack("<I", seq), 0xFFFFFFFF)


def partitions(flash):
    """(factory, [ota_0, ota_1, ...] by index, otadata) as (offset, size) pairs."""
    table = flash[TABLE_OFFSET:TABLE_OFFSET + TABLE_LEN]
    factory, otadata, ota = None, None, {}
    for i in range(0, len(table), 32):
        rec = table[i:i + 32]
        magic = rec[:2]
        if magic == b"\xeb\xeb":
            if hashlib.md5(table[:i]).digest() != rec[16:32]:
                raise ValueError("partition table MD5 does not match")
            break
        if magic == b"\xff\xff":
            break
        if magic != b"\xaa\x50":
            raise ValueError(f"partition record {i // 32} has magic {magic.hex()}")
        ptype, subtype, offset, size = struct.unpack_from("<BBII", rec, 2)
        if ptype == 0 and subtype == 0:
            factory = (offset, size)
        elif ptype == 0 and 0x10 <= subtype <= 0x1F:
            ota[subtype & 0x0F] = (offset, size)
        elif ptype == 1 and subtype == 0:
            otadata = (offset, size)
    count = len(ota)
    return factory, [ota.get(i) for i in range(count)], otadata


def select(flash, ota_count, otadata, has_factory):
    """The bootloader's start index: -1 factory, 0.. an OTA slot."""
    if otadata is None or ota_count == 0:
        return -1
    entries = []
    for at in (otadata[0], otadata[0] + 0x1000):
        seq, state, crc = struct.unpack_from("<I20xII", flash, at)
        invalid = seq == 0xFFFFFFFF or state in (3, 4)
        entries.append((seq, not invalid and crc == ota_crc(seq), invalid))
    if entries[0][2] and entries[1][2]:
        return -1 if has_factory else 0
    valid = [e for e in entries if e[1]]
    if not valid:
        return -1
    best = max(valid, key=lambda e: e[0])
    return (best[0] - 1) % ota_count


def judge_flash(chip, flash):
    factory, ota, otadata = partitions(flash)
    start = select(flash, len(ota), otadata, factory is not None)
    order = list(range(start, -2, -1)) + list(range(start + 1, len(ota)))
    tried = []
    for index in order:
        part = factory if index == -1 else ota[index]
        if part is None:
            continue
        name = "factory" if index == -1 else f"ota_{index}"
        offset, size = part
        verdict = judge_app(chip, flash[offset:offset + size])
        tried.append({"slot": name, "valid": verdict["valid"]})
        if verdict["valid"]:
            return {"boot_slot": name, "offset": offset, "tried": tried, **verdict}
    return {"boot_slot": None, "tried": tried}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chip", required=True, help="esp32s3, esp32c3, ...")
    p.add_argument("kind", choices=["flash", "app"])
    p.add_argument("file")
    a = p.parse_args()
    with open(a.file, "rb") as f:
        data = f.read()
    if a.kind == "app":
        out = judge_app(a.chip, data)
        ok = out["valid"]
    else:
        try:
            out = judge_flash(a.chip, data)
        except ValueError as e:
            out = {"boot_slot": None, "error": str(e)}
        ok = out["boot_slot"] is not None
    out["esptool"] = __import__("esptool").__version__
    print(json.dumps(out))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
