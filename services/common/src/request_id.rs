//! Request ids that cost a few nanoseconds: 32 lowercase hex digits (the length of the simple
//! UUID form they replace), formatted into a stack buffer, no allocation, no syscall.
//!
//! The first 16 digits are random per process, the last 16 a process-wide counter. Each
//! thread reserves a block of counter values at a time, so the shared atomic is touched once
//! per [`BLOCK`] ids and threads never contend on it. Ids are unique within a process and,
//! by the random prefix, across processes (2^64 choices: a collision needs ~4 billion
//! processes); they are not secrets and must not be used as such (they are guessable within a
//! process). A v4 UUID per request cost a read of the OS random source and a String.
use std::cell::Cell;
use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counter values a thread takes from the shared counter at once.
const BLOCK: u64 = 1024;

static NEXT_BLOCK: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// (next value, end of this thread's block); `next == end` means "take a new block".
    static RANGE: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

fn process_prefix() -> u64 {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    *PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0)
}

fn next_counter() -> u64 {
    RANGE.with(|range| {
        let (mut next, mut end) = range.get();
        if next == end {
            next = NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
            end = next + BLOCK;
        }
        range.set((next + 1, end));
        next
    })
}

/// The longest id a client may give (`x-request-id`); a longer one is replaced by ours.
pub(crate) const MAX_LEN: usize = 64;

/// One request's id: ours or the client's, `Copy`, on the stack; `as_str` borrows it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct RequestId {
    bytes: [u8; MAX_LEN],
    len: u8,
}

impl RequestId {
    /// A new id, unique within this process.
    pub(crate) fn new() -> Self {
        Self::from_parts(process_prefix(), next_counter())
    }

    /// The client's id, when it is safe to log and forward: 1 to [`MAX_LEN`] printable ASCII
    /// characters (a `"` too: the access log escapes it).
    pub(crate) fn from_client(id: &[u8]) -> Option<Self> {
        if id.is_empty() || id.len() > MAX_LEN || !id.iter().all(u8::is_ascii_graphic) {
            return None;
        }
        let mut bytes = [0u8; MAX_LEN];
        bytes[..id.len()].copy_from_slice(id);
        Some(Self {
            bytes,
            len: id.len() as u8,
        })
    }

    fn from_parts(prefix: u64, counter: u64) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut bytes = [0u8; MAX_LEN];
        let value = (u128::from(prefix) << 64) | u128::from(counter);
        for (i, byte) in bytes[..32].iter_mut().enumerate() {
            *byte = HEX[((value >> (4 * (31 - i))) & 0xf) as usize];
        }
        Self { bytes, len: 32 }
    }

    /// The id's printable ASCII, for writers of bytes (no UTF-8 check).
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only printable ASCII is ever written into the buffer.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_are_32_hex_digits_with_the_process_prefix() {
        let id = RequestId::new();
        assert_eq!(id.as_str().len(), 32);
        assert!(
            id.as_str()
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(&id.as_str()[..16], format!("{:016x}", process_prefix()));
    }

    #[test]
    fn formatting_puts_prefix_then_counter() {
        let id = RequestId::from_parts(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
        assert_eq!(id.to_string(), "0123456789abcdeffedcba9876543210");
        assert_eq!(RequestId::from_parts(0, 1).as_str(), format!("{:032x}", 1));
    }

    #[test]
    fn a_client_id_is_kept_only_when_printable_ascii_of_at_most_64() {
        let id = RequestId::from_client(b"abc-\"quoted\"-1").expect("printable");
        assert_eq!(id.as_str(), "abc-\"quoted\"-1");
        assert_eq!(
            RequestId::from_client(&[b'x'; MAX_LEN]).map(|id| id.as_str().len()),
            Some(MAX_LEN)
        );
        for bad in [
            &b""[..],
            &[b'x'; MAX_LEN + 1],
            b"a b",
            b"a\nb",
            "é".as_bytes(),
        ] {
            assert_eq!(RequestId::from_client(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ids_are_unique_across_threads_and_blocks() {
        let per_thread = 3 * BLOCK as usize + 7;
        let handles: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    (0..per_thread)
                        .map(|_| RequestId::new())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut seen = HashSet::new();
        for handle in handles {
            for id in handle.join().expect("the thread panicked") {
                assert!(seen.insert(id), "duplicate id {id}");
            }
        }
        assert_eq!(seen.len(), 4 * per_thread);
    }
}
