//! Sizes in Redis units.

/// A size in bytes, written as a byte count or with a Redis unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

impl Size {
    pub fn bytes(self) -> u64 {
        self.0
    }
}

/// Parses a Redis-style size: digits then an optional unit among b, k, kb,
/// m, mb, g, gb (case-insensitive; k/m/g are powers of 1000, kb/mb/gb of 1024).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits == 0 {
        return None;
    }
    let number: u64 = text[..digits].parse().ok()?;
    let multiplier: u64 = match text[digits..].trim() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1 << 10,
        "m" => 1_000_000,
        "mb" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(multiplier)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("64mb"), Some(64 << 20));
        assert_eq!(parse_size("64MB"), Some(64 << 20));
        assert_eq!(parse_size("1k"), Some(1000));
        assert_eq!(parse_size("1Gb"), Some(1 << 30));
        assert_eq!(parse_size("2g"), Some(2_000_000_000));
        assert_eq!(parse_size("5b"), Some(5));
        assert_eq!(parse_size("mb"), None);
        assert_eq!(parse_size("1tb"), None);
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("99999999999999999999gb"), None);
    }
}
