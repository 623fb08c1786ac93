//! One cache entry: an order's canonical JSON and its strong `ETag`'s digest in one buffer,
//! the answers made from it, and what the entry weighs against the cache's byte bound.

use std::sync::Arc;

use axum::http::HeaderValue;
use bytes::Bytes;
use sha2::{Digest, Sha256};

/// What one entry costs beyond its key, its JSON and its `ETag`, counted against the byte
/// bound so that the bound holds for resident memory, for many small orders too: quick_cache's
/// bookkeeping (the slab entry with the key kept in place, the value and the write stamp, the
/// hash table's index, the memory of recently evicted ids), the buffer's reference counts,
/// and the allocator's rounding (mimalloc has four size classes per power of two: a buffer of
/// 1,312 bytes takes 1,536: 126 bytes more on average for these orders, measured).
/// One allocation an entry, the buffer (`Buffer`).
///
/// Measured with mimalloc, the binary's allocator and options, by the resident memory of
/// 100,000 generated orders (1,280 bytes of JSON, 34 of `ETag` and 19 of id on average) loaded
/// through `get_or_load` then read once (`cargo run --example cache_memory`): 1,532 bytes per
/// order, 199 more than those three (1,596, 263 more, with a separate allocation for the key
/// and a `Bytes` header; moka took 1,853, 517 more; `make bench-http` measured 1,904 with moka
/// end to end, 51 more than this measurement, counted too). A cache that keeps evicting and
/// refilling holds more (recently evicted ids, freed buffers leaving partly used allocator
/// pages): 257 more than those three per resident entry after three passes of those orders
/// through a cache a third of their size (58 more than filled once; 63 before the key and
/// buffer changes), and `make bench-ingest` found 120 bytes an entry more than a cache filled
/// once; the larger is counted: 199 + 51 + 120, rounded up.
pub(super) const ENTRY_OVERHEAD: usize = 384;

/// Length of an `ETag`: 32 hex digits (128 bits of SHA-256) between double quotes.
pub(super) const ETAG_LEN: usize = 34;

/// What a [`Buffer`] keeps of the `ETag`: its 128 bits, 16 bytes where its hex digits take 34.
const DIGEST_LEN: usize = (ETAG_LEN - 2) / 2;

/// One ready answer: the order's canonical JSON, sharing the cache's buffer, and its strong
/// `ETag`.
#[derive(Clone, Debug)]
pub struct CachedOrder {
    /// The order's canonical JSON, the body of the answer.
    pub json: Bytes,
    /// `"<32 hex digits>"`: the first 128 bits of the JSON's SHA-256. Orders are immutable,
    /// so the tag of an id never changes, across restarts and instances too.
    pub etag: HeaderValue,
}

impl CachedOrder {
    /// The answer for `json`, in a buffer of its own.
    pub fn new(json: &[u8]) -> Self {
        Self::from_buffer(buffer(json))
    }

    /// The answer for `json` as it is, for a read that no cache keeps: no copy.
    pub(super) fn uncached(json: Bytes) -> Self {
        let etag = etag_header(&Sha256::digest(&json)[..DIGEST_LEN]);
        Self { json, etag }
    }

    /// The answer in a buffer made by [`buffer`]: the JSON a slice of it, no copy, and the
    /// `ETag` written out from its digest. Two small allocations an answer (the `Bytes`
    /// handle's owner, the header's 34 bytes), none more an entry.
    pub(super) fn from_buffer(buf: Buffer) -> Self {
        let etag = etag_header(&buf[..DIGEST_LEN]);
        Self {
            json: Bytes::from_owner(buf).slice(DIGEST_LEN..),
            etag,
        }
    }
}

/// The `ETag` of a digest: its hex digits between double quotes.
fn etag_header(digest: &[u8]) -> HeaderValue {
    let mut etag = [b'"'; ETAG_LEN];
    hex::encode_to_slice(digest, &mut etag[1..ETAG_LEN - 1]).expect("16 bytes are 32 hex digits");
    HeaderValue::from_bytes(&etag).expect("double quotes and hex digits are a valid header value")
}

/// What the cache keeps of an answer: its `ETag`'s digest then its JSON, in one allocation of
/// exactly their size (serializers leave spare capacity that a long-lived entry would keep)
/// with the reference counts in front. A `Bytes` made from a `Vec` would add a header of its
/// own, a second allocation, at its first clone; this one is shared by cloning the `Arc`, and
/// each answer wraps it in a `Bytes` of its own ([`CachedOrder::from_buffer`]). The 16 bytes
/// of digest instead of the tag's 34 pay for the 16 of counts, which would otherwise take
/// buffers over mimalloc's size classes (47 bytes an entry more on average, measured).
pub(super) type Buffer = Arc<[u8]>;

/// The [`Buffer`] of `json`.
pub(super) fn buffer(json: &[u8]) -> Buffer {
    let digest = Sha256::digest(json);
    // An iterator of known length is collected straight into the `Arc`'s allocation.
    digest[..DIGEST_LEN].iter().chain(json).copied().collect()
}

/// What an entry weighs against the byte bound: its id, its JSON and its `ETag` (counted at
/// the tag's length, as `ENTRY_OVERHEAD` was measured against), and `ENTRY_OVERHEAD`.
pub(super) fn weight(uid: &str, buf: &[u8]) -> usize {
    uid.len() + ETAG_LEN + (buf.len() - DIGEST_LEN) + ENTRY_OVERHEAD
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_etag_is_a_strong_tag_of_the_bytes() {
        let order = CachedOrder::new(br#"{"order_uid":"a"}"#);
        let etag = order.etag.to_str().expect("ASCII");
        assert_eq!(etag.len(), ETAG_LEN);
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
        assert!(
            etag[1..ETAG_LEN - 1]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "{etag}"
        );
        // SHA-256 of the bytes, so the same on every instance and after every restart.
        assert_eq!(etag, "\"e118d3fa47b30740ede2ada3a01adbec\"");
        assert_eq!(order.json.as_ref(), br#"{"order_uid":"a"}"#);
        assert_eq!(order.etag, CachedOrder::new(br#"{"order_uid":"a"}"#).etag);
        assert_ne!(order.etag, CachedOrder::new(br#"{"order_uid":"b"}"#).etag);
        let uncached = CachedOrder::uncached(Bytes::from_static(br#"{"order_uid":"a"}"#));
        assert_eq!((uncached.json, uncached.etag), (order.json, order.etag));
    }

    #[test]
    fn every_answer_shares_the_buffer_and_an_entry_weighs_its_id_json_and_tag() {
        let json = br#"{"order_uid":"a"}"#;
        let buf = buffer(json);
        let (first, second) = (
            CachedOrder::from_buffer(buf.clone()),
            CachedOrder::from_buffer(buf.clone()),
        );
        assert_eq!(first.json.as_ptr(), buf[DIGEST_LEN..].as_ptr(), "no copy");
        assert_eq!(second.json.as_ptr(), first.json.as_ptr());
        assert_eq!(first.etag, CachedOrder::new(json).etag);
        assert_eq!(
            weight("a", &buf),
            1 + ETAG_LEN + json.len() + ENTRY_OVERHEAD
        );
    }
}
