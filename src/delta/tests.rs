//! Unit tests of the pieces below the public API (numbers, the saved state's checks).

use super::*;

fn number(bytes: &[u8]) -> Result<Option<i64>, Corrupt> {
    let mut n = Number::new();
    let mut last = Ok(None);
    for &b in bytes {
        last = n.push(b);
        if !matches!(last, Ok(None)) {
            break;
        }
    }
    last
}

#[test]
fn numbers_are_sign_and_magnitude_six_bits_first() {
    assert_eq!(number(&[0x00]), Ok(Some(0)));
    assert_eq!(number(&[0x3f]), Ok(Some(63)));
    assert_eq!(number(&[0x45]), Ok(Some(-5)));
    // 0x80 | 0x2a, then 0x05: 42 + (5 << 6) = 362
    assert_eq!(number(&[0xaa, 0x05]), Ok(Some(362)));
    assert_eq!(number(&[0x80 | 0x40 | 1, 1]), Ok(Some(-(1 + 64))));
    // i64::MAX: 6 + 8 * 7 = 62 bits, then one more bit at shift 62.
    let mut max = [0xffu8; 10];
    max[0] = 0xbf;
    max[9] = 0x01;
    assert_eq!(number(&max), Ok(Some(i64::MAX)));
    max[9] = 0x02;
    assert_eq!(number(&max), Err(Corrupt::Number));
    // An endless chain of continuation bytes stops at the eleventh.
    assert_eq!(number(&[0x80; 11]), Err(Corrupt::Number));
    assert_eq!(number(&[0x80; 10]), Ok(None));
}

#[test]
fn a_fresh_decoder_and_its_state_are_consistent() {
    let d = DeltaDecoder::new(1234);
    assert!(d.is_consistent());
    let mut state = [0u8; STATE_LEN];
    d.save(&mut state).unwrap();
    let r = DeltaDecoder::restore(&state).unwrap();
    assert_eq!(r.base_len, 1234);
    assert_eq!(r.phase, Phase::Header);
}

#[test]
fn ram_is_within_the_budget() {
    // The module documentation quotes these figures.
    assert_eq!(core::mem::size_of::<DeltaDecoder>(), 1392);
    assert!(core::mem::size_of::<DeltaDecoder>() <= 256 + 2048);
    // The update flow's decoder: a 256-byte output buffer.
    assert_eq!(core::mem::size_of::<DeltaDecoder<256>>(), 1392 - 768);
    assert_eq!(STATE_LEN, 335);
}
