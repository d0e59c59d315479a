//! Geospatial commands over sorted sets, as Redis 7.0 has them: a
//! position is a member whose score is its 52-bit geohash (`hash.rs`).
//! GEOADD is ZADD of those scores; GEOPOS, GEODIST and GEOHASH decode the
//! scores of named members; the searches (`search.rs`) read the members
//! in up to 9 score ranges around the centre and keep those inside the
//! shape. Replies are Redis's byte for byte: positions in `%.17f` with
//! trailing zeros cut, distances in `%.4f`.

mod hash;
mod search;

use citadel_resp::Reply;

use super::{parse_score, scores_of};
use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};
use crate::command::table::{c, CommandDef, KEY1, R, WM};

/// Geospatial errors with Redis's texts.
#[derive(Debug, Clone, PartialEq)]
enum GeoError {
    Position(f64, f64),
    Unit,
    Member,
    Negative(&'static str),
    Count,
    StoreWith(&'static str),
    OneOf(&'static str, String),
    AnyWithoutCount,
}

impl From<GeoError> for CmdError {
    fn from(e: GeoError) -> CmdError {
        match e {
            GeoError::Position(lon, lat) => CmdError::Text(format!(
                "ERR invalid longitude,latitude pair {lon:.6},{lat:.6}"
            )),
            GeoError::Unit => {
                CmdError::Static("ERR unsupported unit provided. please use M, KM, FT, MI")
            }
            GeoError::Member => CmdError::Static("ERR could not decode requested zset member"),
            GeoError::Negative(what) => CmdError::Text(format!("ERR {what} cannot be negative")),
            GeoError::Count => CmdError::Static("ERR COUNT must be > 0"),
            GeoError::StoreWith(what) => CmdError::Text(format!(
                "ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
            )),
            GeoError::OneOf(what, command) => CmdError::Text(format!(
                "ERR exactly one of {what} can be specified for {command}"
            )),
            GeoError::AnyWithoutCount => {
                CmdError::Static("ERR the ANY argument requires COUNT argument")
            }
        }
    }
}

/// A number as Redis's getDoubleFromObject reads it (ZADD's score rules:
/// no overflow to infinity); `message` replaces the generic error (`need
/// numeric radius`).
fn number(arg: &[u8], message: Option<&'static str>) -> Result<f64, CmdError> {
    parse_score(arg).ok_or(match message {
        Some(m) => CmdError::Static(m),
        None => CmdError::NotFloat,
    })
}

/// A longitude and latitude argument pair, inside the indexable range.
fn position(lon: &[u8], lat: &[u8]) -> Result<(f64, f64), CmdError> {
    let (lon, lat) = (number(lon, None)?, number(lat, None)?);
    if !(hash::LON_MIN..=hash::LON_MAX).contains(&lon)
        || !(hash::LAT_MIN..=hash::LAT_MAX).contains(&lat)
    {
        return Err(GeoError::Position(lon, lat).into());
    }
    Ok((lon, lat))
}

/// Meters per unit: m, km, ft or mi.
fn unit(arg: &[u8]) -> Result<f64, CmdError> {
    let units: [(&[u8], f64); 4] = [
        (b"m", 1.0),
        (b"km", 1000.0),
        (b"ft", 0.3048),
        (b"mi", 1609.34),
    ];
    units
        .iter()
        .find(|(name, _)| arg.eq_ignore_ascii_case(name))
        .map(|&(_, meters)| meters)
        .ok_or_else(|| GeoError::Unit.into())
}

/// A coordinate as Redis's addReplyHumanLongDouble: `%.17f` with trailing
/// zeros (and a bare point) removed; a bulk in RESP2, a double in RESP3.
fn reply_coordinate(out: &mut Reply<'_>, v: f64) {
    let mut text = format!("{v:.17}");
    if text.contains('.') {
        let kept = text.trim_end_matches('0').trim_end_matches('.').len();
        text.truncate(kept);
    }
    if text == "-0" {
        text = "0".into();
    }
    if out.resp3 {
        out.buf.push(b',');
        out.buf.extend_from_slice(text.as_bytes());
        out.crlf();
    } else {
        out.bulk(text.as_bytes());
    }
}

fn reply_position(out: &mut Reply<'_>, (lon, lat): (f64, f64)) {
    out.array(2);
    reply_coordinate(out, lon);
    reply_coordinate(out, lat);
}

/// A distance as Redis replies it: a bulk of `%.4f`.
fn reply_distance(out: &mut Reply<'_>, d: f64) {
    out.bulk(format!("{d:.4}").as_bytes());
}

/// GEOADD key [NX|XX] [CH] longitude latitude member [...]: ZADD of the
/// positions' scores, as Redis runs it.
pub fn geoadd(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut first = 2;
    let (mut nx, mut xx) = (false, false);
    while first < args.len() {
        if args.is(first, "nx") {
            nx = true;
        } else if args.is(first, "xx") {
            xx = true;
        } else if !args.is(first, "ch") {
            break;
        }
        first += 1;
    }
    if !(args.len() - first).is_multiple_of(3) || (nx && xx) {
        return Err(CmdError::Syntax);
    }
    let mut buf = Vec::new();
    let mut spans = Vec::new();
    let mut push = |arg: &[u8]| {
        let start = buf.len();
        buf.extend_from_slice(arg);
        spans.push(start..buf.len());
    };
    push(b"zadd");
    (1..first).for_each(|i| push(args.get(i)));
    for i in (first..args.len()).step_by(3) {
        let (lon, lat) = position(args.get(i), args.get(i + 1))?;
        let score = hash::score_of(lon, lat).ok_or(GeoError::Position(lon, lat))?;
        push((score as u64).to_string().as_bytes());
        push(args.get(i + 2));
    }
    super::zadd(ctx, Args::new(&buf, &spans))
}

/// GEOPOS key [member ...]
pub fn geopos(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let members: Vec<&[u8]> = args.from(2).iter().collect();
    let scores = scores_of(ctx, args.get(1), &members)?;
    ctx.out.array(scores.len());
    for score in scores {
        match score {
            Some(score) => reply_position(&mut ctx.out, hash::position_of(score)),
            None => ctx.out.null_array(),
        }
    }
    Ok(())
}

/// GEODIST key member1 member2 [M|KM|FT|MI]
pub fn geodist(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let meters = match args.len() {
        5 => unit(args.get(4))?,
        n if n > 5 => return Err(CmdError::Syntax),
        _ => 1.0,
    };
    let scores = scores_of(ctx, args.get(1), &[args.get(2), args.get(3)])?;
    match scores[..] {
        [Some(a), Some(b)] => {
            let ((x1, y1), (x2, y2)) = (hash::position_of(a), hash::position_of(b));
            reply_distance(&mut ctx.out, hash::distance(x1, y1, x2, y2) / meters);
        }
        _ => ctx.out.null(),
    }
    Ok(())
}

/// GEOHASH key [member ...]: standard 11-character geohashes.
pub fn geohash(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let members: Vec<&[u8]> = args.from(2).iter().collect();
    let scores = scores_of(ctx, args.get(1), &members)?;
    ctx.out.array(scores.len());
    for score in scores {
        match score {
            Some(score) => ctx.out.bulk(&hash::standard_text(score)),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

const G: &str = "geo";
const RM: &[&str] = &["readonly"];
const W_MOVABLE: &[&str] = &["write", "denyoom", "movablekeys"];

#[rustfmt::skip]
pub static COMMANDS: &[CommandDef] = &[
    c("geoadd", -5, WM, KEY1, G, "3.2.0", "Adds one or more members to a geospatial index. The key is created if it doesn't exist.", geoadd),
    c("geopos", -2, R, KEY1, G, "3.2.0", "Returns the longitude and latitude of members from a geospatial index.", geopos),
    c("geodist", -4, R, KEY1, G, "3.2.0", "Returns the distance between two members of a geospatial index.", geodist),
    c("geohash", -2, R, KEY1, G, "3.2.0", "Returns members from a geospatial index as geohash strings.", geohash),
    c("geosearch", -7, RM, KEY1, G, "6.2.0", "Queries a geospatial index for members inside an area of a box or a circle.", search::geosearch),
    c("geosearchstore", -8, WM, (1, 2, 1), G, "6.2.0", "Queries a geospatial index for members inside an area of a box or a circle, optionally stores the result.", search::geosearchstore),
    c("georadius", -6, W_MOVABLE, KEY1, G, "3.2.0", "Queries a geospatial index for members within a distance from a coordinate, optionally stores the result.", search::georadius).finding_keys(search::radius_keys),
    c("georadius_ro", -6, RM, KEY1, G, "3.2.10", "Returns members from a geospatial index that are within a distance from a coordinate.", search::georadius_ro),
    c("georadiusbymember", -5, W_MOVABLE, KEY1, G, "3.2.0", "Queries a geospatial index for members within a distance from a member, optionally stores the result.", search::georadiusbymember).finding_keys(search::radius_keys),
    c("georadiusbymember_ro", -5, RM, KEY1, G, "3.2.10", "Returns members from a geospatial index that are within a distance from a member.", search::georadiusbymember_ro),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The position stored for a GEOADD of (lon, lat).
    fn stored(lon: f64, lat: f64) -> (f64, f64) {
        hash::position_of(hash::score_of(lon, lat).unwrap())
    }

    #[test]
    fn coordinates_print_like_redis() {
        let mut buf = Vec::new();
        let mut out = Reply {
            buf: &mut buf,
            resp3: false,
        };
        reply_coordinate(&mut out, stored(13.361389, 38.115556).0);
        reply_coordinate(&mut out, 2.5);
        reply_coordinate(&mut out, -0.0);
        assert_eq!(
            buf,
            b"$20\r\n13.36138933897018433\r\n$3\r\n2.5\r\n$1\r\n0\r\n"
        );
    }
}
