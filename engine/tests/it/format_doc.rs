//! docs/format.md matches the code: decode the example bytes it documents.

use engine::format::{HintEntry, decode_hint, decode_record, encode_hint, encode_record};

/// The hex bytes of the fenced block that follows `marker` in docs/format.md.
fn documented_bytes(marker: &str) -> Vec<u8> {
    let doc = include_str!("../../../docs/format.md");
    let after = &doc[doc.find(marker).expect("marker in docs/format.md")..];
    let block = after.split("```").nth(1).expect("a fenced block after the marker");
    block
        .lines()
        .filter_map(|l| l.split_once(':').map(|(_, hex)| hex.split('|').next().unwrap_or("")))
        .flat_map(|hex| hex.split_whitespace())
        .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
        .collect()
}

#[test]
fn the_documented_record_decodes_to_the_documented_fields() {
    let bytes = documented_bytes("Example record");
    let (record, n) = decode_record(1, &bytes).expect("the documented record is valid");
    assert_eq!(n, bytes.len());
    assert_eq!(record.seq, 7);
    assert_eq!(record.timestamp_ns, 1_000_000);
    assert!(!record.tombstone);
    assert_eq!(record.key, b"k1");
    assert_eq!(record.value, b"hello");
    assert_eq!(bytes, encode_record(1, 7, 1_000_000, false, b"k1", b"hello"));
}

#[test]
fn the_documented_hint_decodes_to_the_documented_entry() {
    let bytes = documented_bytes("Example hint file");
    let entry =
        HintEntry { seq: 7, offset: 0, value_len: 5, tombstone: false, key: b"k1".to_vec() };
    assert_eq!(decode_hint(&bytes), Some((36, vec![entry.clone()])));
    assert_eq!(bytes, encode_hint(36, &[entry]));
}
