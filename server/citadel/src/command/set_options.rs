//! The EX / PX / EXAT / PXAT options shared by SET, SETEX, PSETEX and
//! GETEX, and the option parser SET and GETEX share (Redis's
//! parseExtendedStringArgumentsOrReply).

use super::args::Args;
use super::error::CmdError;
use citadel_resp::num;

/// Which command's options are being parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptsFor {
    Set,
    GetEx,
}

/// Options of SET (NX XX GET KEEPTTL + TTL) or GETEX (PERSIST + TTL).
#[derive(Debug, Default, Clone, Copy)]
pub struct StringOpts<'a> {
    pub nx: bool,
    pub xx: bool,
    pub get: bool,
    pub keepttl: bool,
    pub persist: bool,
    pub ttl: Option<TtlArg<'a>>,
}

impl<'a> StringOpts<'a> {
    /// Parses `opts` (the arguments after the key / value). Conflicting or
    /// unknown options are a syntax error; one TTL keyword may repeat.
    pub fn parse(opts: Args<'a>, cmd: OptsFor) -> Result<Self, CmdError> {
        let mut o = StringOpts::default();
        let set = cmd == OptsFor::Set;
        let mut i = 0;
        while i < opts.len() {
            let opt = opts.get(i);
            let has_next = i + 1 < opts.len();
            let is = |w: &str| opt.eq_ignore_ascii_case(w.as_bytes());
            let ttl_unit = TtlUnit::keyword(opt);
            if set && is("nx") && !o.xx {
                o.nx = true;
            } else if set && is("xx") && !o.nx {
                o.xx = true;
            } else if set && is("get") {
                o.get = true;
            } else if set && is("keepttl") && o.ttl.is_none() {
                o.keepttl = true;
            } else if !set && is("persist") && o.ttl.is_none() {
                o.persist = true;
            } else if let Some(unit) = ttl_unit.filter(|u| {
                has_next && !o.keepttl && !o.persist && o.ttl.is_none_or(|t| t.unit == *u)
            }) {
                i += 1;
                o.ttl = Some(TtlArg {
                    unit,
                    value: opts.get(i),
                });
            } else {
                return Err(CmdError::Syntax);
            }
            i += 1;
        }
        Ok(o)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlUnit {
    /// EX / SETEX: seconds from now.
    Ex,
    /// PX / PSETEX: milliseconds from now.
    Px,
    /// EXAT: Unix seconds.
    ExAt,
    /// PXAT: Unix milliseconds.
    PxAt,
}

impl TtlUnit {
    /// Recognizes the option keyword (case-insensitive).
    pub fn keyword(opt: &[u8]) -> Option<TtlUnit> {
        [
            ("ex", TtlUnit::Ex),
            ("px", TtlUnit::Px),
            ("exat", TtlUnit::ExAt),
            ("pxat", TtlUnit::PxAt),
        ]
        .into_iter()
        .find(|(k, _)| opt.eq_ignore_ascii_case(k.as_bytes()))
        .map(|(_, u)| u)
    }
}

/// A TTL option as given; it is validated after all options are read, as
/// Redis does (so a syntax error anywhere wins over a bad number).
#[derive(Debug, Clone, Copy)]
pub struct TtlArg<'a> {
    pub unit: TtlUnit,
    pub value: &'a [u8],
}

impl TtlArg<'_> {
    /// Absolute expiry in Unix ms (Redis's getExpireMillisecondsOrReply).
    pub fn resolve(&self, now_ms: u64, cmd: &'static str) -> Result<u64, CmdError> {
        let v = num::parse_i64(self.value).ok_or(CmdError::NotInteger)?;
        let seconds = matches!(self.unit, TtlUnit::Ex | TtlUnit::ExAt);
        if v <= 0 || (seconds && v > i64::MAX / 1000) {
            return Err(CmdError::ExpireTime(cmd));
        }
        let ms = if seconds { v * 1000 } else { v };
        let ms = match self.unit {
            TtlUnit::Ex | TtlUnit::Px => ms
                .checked_add(now_ms as i64)
                .ok_or(CmdError::ExpireTime(cmd))?,
            TtlUnit::ExAt | TtlUnit::PxAt => ms,
        };
        Ok(ms as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves() {
        let arg = |unit, value: &'static str| TtlArg {
            unit,
            value: value.as_bytes(),
        };
        assert_eq!(arg(TtlUnit::Ex, "10").resolve(1000, "set"), Ok(11_000));
        assert_eq!(arg(TtlUnit::Px, "10").resolve(1000, "set"), Ok(1010));
        assert_eq!(arg(TtlUnit::ExAt, "10").resolve(1000, "set"), Ok(10_000));
        assert_eq!(arg(TtlUnit::PxAt, "10").resolve(1000, "set"), Ok(10));
        assert_eq!(
            arg(TtlUnit::Ex, "0").resolve(0, "set"),
            Err(CmdError::ExpireTime("set"))
        );
        assert_eq!(
            arg(TtlUnit::Ex, "-5").resolve(0, "set"),
            Err(CmdError::ExpireTime("set"))
        );
        assert_eq!(
            arg(TtlUnit::Ex, "x").resolve(0, "set"),
            Err(CmdError::NotInteger)
        );
        assert_eq!(
            arg(TtlUnit::Ex, "9223372036854776").resolve(0, "getex"),
            Err(CmdError::ExpireTime("getex"))
        );
        assert_eq!(
            arg(TtlUnit::Px, "9223372036854775807").resolve(5, "set"),
            Err(CmdError::ExpireTime("set"))
        );
    }
}

/// What GETSET / GETDEL / GETEX do to the key after reading it.
#[derive(Clone, Copy)]
pub enum Change<'a> {
    /// Write this value (also when the key is absent), dropping any TTL.
    Replace(&'a [u8]),
    Delete,
    /// New expiry (None: persist).
    Expire(Option<u64>),
}
