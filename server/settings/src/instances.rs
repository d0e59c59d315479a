//! A plugin's instance count: a fixed number, or `MIN..MAX` for an
//! elastic plugin the supervisor grows and shrinks with its load.

use crate::value::SettingValue;

/// The most processes one plugin may run.
pub const MAX_INSTANCES: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceRange {
    pub min: usize,
    pub max: usize,
}

impl InstanceRange {
    pub fn fixed(n: usize) -> InstanceRange {
        InstanceRange { min: n, max: n }
    }

    /// True when the supervisor may change the count.
    pub fn is_elastic(&self) -> bool {
        self.min < self.max
    }
}

impl SettingValue for InstanceRange {
    fn parse(text: &str) -> Result<Self, String> {
        let number = |t: &str| {
            t.trim().parse::<usize>().map_err(|_| {
                format!("{text:?}: expected a count such as 2, or MIN..MAX such as 1..4")
            })
        };
        let range = match text.trim().split_once("..") {
            Some((min, max)) => InstanceRange {
                min: number(min)?,
                max: number(max)?,
            },
            None => InstanceRange::fixed(number(text)?),
        };
        if range.min < 1 || range.max > MAX_INSTANCES || range.min > range.max {
            return Err(format!(
                "instances must be 1-{MAX_INSTANCES}, or MIN..MAX with 1 <= MIN <= MAX <= {MAX_INSTANCES}"
            ));
        }
        Ok(range)
    }
    fn render(&self) -> String {
        if self.is_elastic() {
            format!("{}..{}", self.min, self.max)
        } else {
            self.min.to_string()
        }
    }
    fn toml_literal(text: &str) -> String {
        if text.bytes().all(|b| b.is_ascii_digit()) {
            text.to_string()
        } else {
            toml::Value::String(text.to_string()).to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_or_a_range() {
        assert_eq!(InstanceRange::parse("3"), Ok(InstanceRange::fixed(3)));
        let r = InstanceRange::parse("1..4").unwrap();
        assert_eq!((r.min, r.max, r.is_elastic()), (1, 4, true));
        assert_eq!(r.render(), "1..4");
        assert_eq!(InstanceRange::parse("2..2").unwrap().render(), "2");
        for bad in ["0", "65", "3..2", "0..2", "1..65", "a..b", ""] {
            assert!(InstanceRange::parse(bad).is_err(), "{bad}");
        }
    }
}
