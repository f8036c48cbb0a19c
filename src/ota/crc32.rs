//! The two reflected CRC-32s of the on-flash records, bit by bit, without a table.
//!
//! Both inputs are tiny (4 bytes for an otadata entry, 44 for a journal record), so the
//! 1 KiB lookup table a table-driven CRC keeps in flash costs far more than the loop saves.
//! The tests check both against the `crc` crate's table-driven catalogue algorithms.

/// Reflected CRC-32 with polynomial 0x04C11DB7 (reversed 0xEDB88320), register preset to
/// `init`, output inverted (xorout 0xFFFFFFFF).
pub(crate) fn crc32_reflected(init: u32, data: &[u8]) -> u32 {
    let mut reg = init;
    for &b in data {
        reg ^= u32::from(b);
        for _ in 0..8 {
            let mask = (reg & 1).wrapping_neg();
            reg = (reg >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !reg
}

/// Standard CRC-32 (ISO-HDLC, zlib's): init 0xFFFFFFFF.
pub(crate) fn crc32_iso_hdlc(data: &[u8]) -> u32 {
    crc32_reflected(0xFFFF_FFFF, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_catalogue() {
        let iso = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
        let ota = crc::Crc::<u32>::new(&crate::ota::esp_idf::otadata::OTA_SEQ_CRC_ALGORITHM);
        assert_eq!(crc32_iso_hdlc(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32_reflected(0, b"123456789"), 0xD202_D277);
        let mut data = [0u8; 64];
        for (i, b) in data.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37) ^ 0x5A;
        }
        for len in 0..=data.len() {
            assert_eq!(crc32_iso_hdlc(&data[..len]), iso.checksum(&data[..len]));
            assert_eq!(crc32_reflected(0, &data[..len]), ota.checksum(&data[..len]));
        }
    }
}
