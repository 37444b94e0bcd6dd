//! Token counting with o200k_base. The ranks are embedded in the `tiktoken-rs` crate (its
//! `assets/o200k_base.tiktoken` has the same SHA-256 as OpenAI's published file), so nothing is
//! downloaded at run time. Special-token text counts as ordinary text, like tiktoken's `encode_ordinary`.

/// Tokens of `text` (built once per process on first use, ~0.2 s).
pub fn count(text: &str) -> usize {
    tiktoken_rs::o200k_base_singleton().encode_ordinary(text).len()
}

pub fn count_batch(texts: &[String]) -> Vec<usize> {
    let bpe = tiktoken_rs::o200k_base_singleton();
    texts.iter().map(|text| bpe.encode_ordinary(text).len()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_counts() {
        // "hello world" is two tokens in every OpenAI BPE; the empty string has none.
        assert_eq!(count("hello world"), 2);
        assert_eq!(count(""), 0);
        assert_eq!(count_batch(&["hello world".into(), "<|endoftext|>".into()]), vec![2, count("<|endoftext|>")]);
        assert!(count("<|endoftext|>") > 1, "special tokens count as text");
    }
}
