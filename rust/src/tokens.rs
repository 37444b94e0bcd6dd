//! Token counting with o200k_base. The ranks are embedded in the `tiktoken-rs` crate (its
//! `assets/o200k_base.tiktoken` has the same SHA-256 as OpenAI's published file), so nothing is
//! downloaded at run time. Special-token text counts as ordinary text, like tiktoken's `encode_ordinary`.
//!
//! The table costs about 46 MiB of memory and only `count_tokens` requests need it, so it is built on the
//! first count (~0.2 s) and dropped again once unused for `IDLE_RELEASE` (then the freed pages go back to the
//! system); the next count builds it again. Counts are the same either way.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tiktoken_rs::CoreBPE;

/// How long the table stays after its last use.
pub const IDLE_RELEASE: Duration = Duration::from_secs(120);
const CHECK_EVERY: Duration = Duration::from_secs(10);

struct Held {
    bpe: Arc<CoreBPE>,
    last_used: Instant,
}

static HELD: Mutex<Option<Held>> = Mutex::new(None);

fn counter() -> Arc<CoreBPE> {
    let mut held = HELD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let now = Instant::now();
    if let Some(held) = held.as_mut() {
        held.last_used = now;
        return held.bpe.clone();
    }
    let bpe = Arc::new(tiktoken_rs::o200k_base().expect("the embedded o200k_base table loads"));
    *held = Some(Held { bpe: bpe.clone(), last_used: now });
    // One thread per built table: it drops the table once idle, then ends.
    let _ = std::thread::Builder::new().name("o200k-release".into()).spawn(|| loop {
        std::thread::sleep(CHECK_EVERY);
        if release_if_idle(IDLE_RELEASE) {
            return;
        }
    });
    bpe
}

/// Drop the table if it has been unused for `idle` (a count still running keeps its own reference until it
/// ends). True if it was dropped.
pub fn release_if_idle(idle: Duration) -> bool {
    let dropped = {
        let mut held = HELD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if held.as_ref().is_some_and(|h| h.last_used.elapsed() >= idle) {
            held.take()
        } else {
            None
        }
    };
    let Some(dropped) = dropped else { return false };
    drop(dropped);
    return_free_memory();
    true
}

/// The table is ~200k small allocations; glibc keeps freed ones in its arenas unless asked to give them back.
fn return_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Tokens of `text`.
pub fn count(text: &str) -> usize {
    counter().encode_ordinary(text).len()
}

pub fn count_batch(texts: &[String]) -> Vec<usize> {
    let bpe = counter();
    texts.iter().map(|text| bpe.encode_ordinary(text).len()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table is process-wide: these tests take turns with it.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn known_counts() {
        let _turn = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // "hello world" is two tokens in every OpenAI BPE; the empty string has none.
        assert_eq!(count("hello world"), 2);
        assert_eq!(count(""), 0);
        assert_eq!(count_batch(&["hello world".into(), "<|endoftext|>".into()]), vec![2, count("<|endoftext|>")]);
        assert!(count("<|endoftext|>") > 1, "special tokens count as text");
    }

    #[test]
    fn a_released_table_is_built_again_with_the_same_counts() {
        let _turn = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let text = "Tokenizers split text into pieces: ünïcödé, numbers 12345, and code { x => x * 2 }.";
        let before = count(text);
        assert!(!release_if_idle(Duration::from_secs(3600)), "just used: kept");
        assert!(release_if_idle(Duration::ZERO));
        assert!(HELD.lock().unwrap().is_none());
        assert_eq!(count(text), before);
        assert!(HELD.lock().unwrap().is_some());
    }
}
