//! New X-Request-ID values: UUID v4 text (as the Node plane's `randomUUID()`), made without a system call per
//! request. Each thread keeps a SipHash key drawn from the OS's random source once (std's `RandomState`) and
//! hashes a counter with it: the ids are unpredictable to whoever does not hold the key, never repeat within a
//! thread, and cost a few nanoseconds instead of a `getrandom` call each (what `uuid::Uuid::new_v4` does).

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

thread_local! {
    static KEY: RandomState = RandomState::new();
    static COUNTER: Cell<u64> = const { Cell::new(0) };
}

fn random_u128() -> u128 {
    let n = COUNTER.with(|c| {
        let n = c.get();
        c.set(n.wrapping_add(1));
        n
    });
    KEY.with(|key| {
        // one hasher for both halves: the second goes on from the state the first was finished from (a SipHash
        // `finish` leaves the state as it was), which costs a round and a finalisation instead of a whole hash
        let mut h = key.build_hasher();
        h.write_u64(n);
        let high = h.finish();
        h.write_u8(1);
        (u128::from(high) << 64) | u128::from(h.finish())
    })
}

/// A random number (unpredictable to whoever does not hold this thread's key), as cheap as an id.
pub(crate) fn random_u64() -> u64 {
    random_u128() as u64
}

/// A new id: `xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`, lower-case hex.
pub fn new_request_id() -> [u8; 36] {
    // version 4 and the RFC 9562 variant, as a random UUID has them
    let v = (random_u128() & !(0xf000u128 << 64) & !(0xc000u128 << 48)) | (0x4000u128 << 64) | (0x8000u128 << 48);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'-'; 36];
    let mut at = 0;
    // (a byte at a time: shifting a u128 per nibble cost more than the hash)
    for (i, byte) in v.to_be_bytes().into_iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            at += 1;
        }
        out[at] = HEX[usize::from(byte >> 4)];
        out[at + 1] = HEX[usize::from(byte & 0xf)];
        at += 2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn uuid_v4_text_never_repeating() {
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let id = new_request_id();
            let text = std::str::from_utf8(&id).unwrap();
            let groups: Vec<&str> = text.split('-').collect();
            assert_eq!(groups.iter().map(|g| g.len()).collect::<Vec<_>>(), vec![8, 4, 4, 4, 12], "{text}");
            assert!(text.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{text}");
            assert!(groups[2].starts_with('4'), "{text}");
            assert!(matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'), "{text}");
            assert!(seen.insert(id), "{text} repeated");
        }
    }

    #[test]
    fn threads_do_not_share_a_sequence() {
        let a = std::thread::spawn(new_request_id).join().unwrap();
        let b = std::thread::spawn(new_request_id).join().unwrap();
        assert_ne!(a, b);
    }
}
