//! GEOSEARCH, GEOSEARCHSTORE, GEORADIUS, GEORADIUSBYMEMBER and their _RO
//! forms: one parser and one search, as Redis's georadiusGeneric, so each
//! form has Redis's options, errors (in Redis's order) and replies.

use citadel_cache::{Changes, ItemRef, ValueKind};
use citadel_collections::zset::{self, Entry};
use citadel_collections::ScoreRange;

use super::hash::{self, Cell, Extent, Shape};
use super::{number, position, reply_coordinate, reply_distance, unit, GeoError};
use crate::command::args::Args;
use crate::command::collections::value::view;
use crate::command::collections::zset::paged::{is_paged, update_into, Fail, PagedZ};
use crate::command::collections::zset::whole::Whole;
use crate::command::collections::zset::{
    range::paged_span, run_paged, scores_of, update_store, with_entries, ZSET,
};
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

/// Which command form is parsing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// GEORADIUS[_RO]: centre and radius are positional.
    RadiusAt {
        store: bool,
    },
    /// GEORADIUSBYMEMBER[_RO].
    RadiusByMember {
        store: bool,
    },
    Search,
    SearchStore,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    None,
    Asc,
    Desc,
}

/// A parsed search.
struct Query<'a> {
    shape: Shape,
    with_dist: bool,
    with_hash: bool,
    with_coord: bool,
    order: Order,
    count: u64,
    any: bool,
    /// The key results are stored at, and whether as distances.
    store: Option<(&'a [u8], bool)>,
}

/// A member found inside the shape.
struct Point {
    member: Vec<u8>,
    score: f64,
    lon: f64,
    lat: f64,
    /// Meters from the centre.
    meters: f64,
}

/// Whether `key` holds a sorted set (false: missing); WRONGTYPE otherwise.
fn source_exists(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<bool, CmdError> {
    match ctx.thread.cache.get(key, |item| item.kind()) {
        None => Ok(false),
        Some(ValueKind::ZSet) => Ok(true),
        Some(_) => Err(CmdError::WrongType),
    }
}

/// The position of `member`, for FROMMEMBER and GEORADIUSBYMEMBER.
fn member_position(ctx: &mut Ctx<'_>, key: &[u8], member: &[u8]) -> Result<(f64, f64), CmdError> {
    match scores_of(ctx, key, &[member])?[0] {
        Some(score) => Ok(hash::position_of(score)),
        None => Err(GeoError::Member.into()),
    }
}

/// A distance and its unit: (value, meters per unit).
fn distance_arg(value: &[u8], unit_arg: &[u8]) -> Result<(f64, f64), CmdError> {
    let d = number(value, Some("ERR need numeric radius"))?;
    if d < 0.0 {
        return Err(GeoError::Negative("radius").into());
    }
    Ok((d, unit(unit_arg)?))
}

/// Parses `args` as `form` (Redis's georadiusGeneric, in its order: the
/// source's type, the positional centre and radius, then the options).
fn parse<'a>(
    ctx: &mut Ctx<'_>,
    args: &Args<'a>,
    form: Form,
    exists: bool,
) -> Result<Query<'a>, CmdError> {
    let src = args.get(if form == Form::SearchStore { 2 } else { 1 });
    let mut centre = None;
    let mut extent = None;
    let mut meters_per_unit = 1.0;
    let base = match form {
        Form::RadiusAt { .. } => {
            centre = Some(position(args.get(2), args.get(3))?);
            let (r, m) = distance_arg(args.get(4), args.get(5))?;
            (extent, meters_per_unit) = (Some(Extent::Radius(r)), m);
            6
        }
        Form::RadiusByMember { .. } => {
            // A missing source skips straight to the options.
            if exists {
                centre = Some(member_position(ctx, src, args.get(2))?);
                let (r, m) = distance_arg(args.get(3), args.get(4))?;
                (extent, meters_per_unit) = (Some(Extent::Radius(r)), m);
            }
            5
        }
        Form::Search => 2,
        Form::SearchStore => 3,
    };
    let searching = matches!(form, Form::Search | Form::SearchStore);
    let may_store = matches!(
        form,
        Form::RadiusAt { store: true } | Form::RadiusByMember { store: true }
    );
    let mut q = Query {
        shape: Shape {
            lon: 0.0,
            lat: 0.0,
            extent: Extent::Radius(0.0),
            meters_per_unit: 1.0,
        },
        with_dist: false,
        with_hash: false,
        with_coord: false,
        order: Order::None,
        count: 0,
        any: false,
        store: (form == Form::SearchStore).then(|| (args.get(1), false)),
    };
    let (mut from_member, mut from_lonlat, mut by_radius, mut by_box) =
        (false, false, false, false);
    let mut i = base;
    while i < args.len() {
        let left = args.len() - i - 1;
        let word = args.get(i);
        let is = |name: &str| word.eq_ignore_ascii_case(name.as_bytes());
        if is("withdist") {
            q.with_dist = true;
        } else if is("withhash") {
            q.with_hash = true;
        } else if is("withcoord") {
            q.with_coord = true;
        } else if is("any") {
            q.any = true;
        } else if is("asc") {
            q.order = Order::Asc;
        } else if is("desc") {
            q.order = Order::Desc;
        } else if is("count") && left >= 1 {
            let n = args.int(i + 1)?;
            if n <= 0 {
                return Err(GeoError::Count.into());
            }
            q.count = n as u64;
            i += 1;
        } else if (is("store") || is("storedist")) && left >= 1 && may_store {
            q.store = Some((args.get(i + 1), is("storedist")));
            i += 1;
        } else if is("storedist") && form == Form::SearchStore {
            q.store = Some((args.get(1), true));
        } else if is("frommember") && left >= 1 && searching && !from_lonlat {
            if exists {
                centre = Some(member_position(ctx, src, args.get(i + 1))?);
            }
            from_member = true;
            i += 1;
        } else if is("fromlonlat") && left >= 2 && searching && !from_member {
            centre = Some(position(args.get(i + 1), args.get(i + 2))?);
            from_lonlat = true;
            i += 2;
        } else if is("byradius") && left >= 2 && searching && !by_box {
            let (r, m) = distance_arg(args.get(i + 1), args.get(i + 2))?;
            (extent, meters_per_unit) = (Some(Extent::Radius(r)), m);
            by_radius = true;
            i += 2;
        } else if is("bybox") && left >= 3 && searching && !by_radius {
            let width = number(args.get(i + 1), Some("ERR need numeric width"))?;
            let height = number(args.get(i + 2), Some("ERR need numeric height"))?;
            if width < 0.0 || height < 0.0 {
                return Err(GeoError::Negative("height or width").into());
            }
            meters_per_unit = unit(args.get(i + 3))?;
            extent = Some(Extent::Box { width, height });
            by_box = true;
            i += 3;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if q.store.is_some() && (q.with_dist || q.with_hash || q.with_coord) {
        let what = if form == Form::SearchStore {
            "GEOSEARCHSTORE"
        } else {
            "STORE option in GEORADIUS"
        };
        return Err(GeoError::StoreWith(what).into());
    }
    let command = || String::from_utf8_lossy(args.get(0)).into_owned();
    if searching && !(from_member || from_lonlat) {
        return Err(GeoError::OneOf("FROMMEMBER or FROMLONLAT", command()).into());
    }
    if searching && !(by_radius || by_box) {
        return Err(GeoError::OneOf("BYRADIUS and BYBOX", command()).into());
    }
    if q.any && q.count == 0 {
        return Err(GeoError::AnyWithoutCount.into());
    }
    // COUNT alone asks for the nearest: sorted ascending.
    if q.count != 0 && q.order == Order::None && !q.any {
        q.order = Order::Asc;
    }
    if let (Some((lon, lat)), Some(extent)) = (centre, extent) {
        q.shape = Shape {
            lon,
            lat,
            extent,
            meters_per_unit,
        };
    }
    Ok(q)
}

/// The cells to read: Redis's 9, without the useless ones and without a
/// cell equal to the one read just before it (a huge radius makes
/// neighbours coincide).
fn cells_to_read(shape: &Shape) -> Vec<Cell> {
    let mut cells: Vec<Cell> = Vec::with_capacity(9);
    for cell in shape.cells() {
        if !cell.is_none() && cells.last() != Some(&cell) {
            cells.push(cell);
        }
    }
    cells
}

fn score_range(cell: &Cell) -> ScoreRange {
    let (min, max) = cell.score_range();
    ScoreRange {
        min,
        max,
        min_ex: false,
        max_ex: true,
    }
}

/// Keeps the entries inside the shape, up to `limit` points in all (0:
/// no limit), as Redis's geoAppendIfWithinShape.
fn keep_inside<'e>(
    shape: &Shape,
    limit: u64,
    found: &mut Vec<Point>,
    entries: impl Iterator<Item = Entry<'e>>,
) {
    for (score, member) in entries {
        if limit != 0 && found.len() as u64 >= limit {
            return;
        }
        let (lon, lat) = hash::position_of(score);
        if let Some(meters) = shape.distance_to(lon, lat) {
            found.push(Point {
                member: member.to_vec(),
                score,
                lon,
                lat,
                meters,
            });
        }
    }
}

/// The points of a packed sorted set's `entries` inside the shape.
fn search_entries(shape: &Shape, limit: u64, entries: &[Entry<'_>]) -> Vec<Point> {
    let mut found = Vec::new();
    for cell in cells_to_read(shape) {
        if limit != 0 && found.len() as u64 >= limit {
            break;
        }
        let span = score_range(&cell).span(entries);
        keep_inside(shape, limit, &mut found, entries[span].iter().copied());
    }
    found
}

/// The same on a paged sorted set: reads the pages of each cell's range.
fn search_paged(shape: &Shape, limit: u64, z: &mut PagedZ<'_>) -> Result<Vec<Point>, Fail> {
    let mut found = Vec::new();
    for cell in cells_to_read(shape) {
        if limit != 0 && found.len() as u64 >= limit {
            break;
        }
        let span = paged_span(z, &score_range(&cell))?;
        let picked = z.tree.range(span.start as u64, span.end as u64)?;
        keep_inside(
            shape,
            limit,
            &mut found,
            picked.iter().map(|(s, m)| (*s, &m[..])),
        );
    }
    Ok(found)
}

/// Sorts (the first `count` at least) as asked.
fn order(q: &Query<'_>, found: &mut [Point]) {
    let by = |a: &Point, b: &Point| a.meters.total_cmp(&b.meters);
    match q.order {
        Order::None => {}
        Order::Asc => found.sort_by(by),
        Order::Desc => found.sort_by(|a, b| by(b, a)),
    }
}

fn reply(ctx: &mut Ctx<'_>, q: &Query<'_>, found: &[Point]) {
    let out = &mut ctx.out;
    let options = usize::from(q.with_dist) + usize::from(q.with_hash) + usize::from(q.with_coord);
    out.array(found.len());
    for p in found {
        if options > 0 {
            out.array(options + 1);
        }
        out.bulk(&p.member);
        if q.with_dist {
            reply_distance(out, p.meters / q.shape.meters_per_unit);
        }
        if q.with_hash {
            out.int(p.score as i64);
        }
        if q.with_coord {
            out.array(2);
            reply_coordinate(out, p.lon);
            reply_coordinate(out, p.lat);
        }
    }
}

/// Replaces the destination (key 0) with `points` as a sorted set;
/// returns its size.
fn replace(
    items: &[Option<ItemRef<'_>>],
    changes: &mut Changes,
    w: &mut Whole<'_>,
    points: &[(f64, Vec<u8>)],
) -> Result<usize, CmdError> {
    let mut entries: Vec<Entry<'_>> = points.iter().map(|(s, m)| (*s, &m[..])).collect();
    entries.sort_by(zset::cmp);
    w.replace(changes, 0, items[0].is_some(), &entries)?;
    Ok(entries.len())
}

/// Runs `form`: replies the points, or stores them and replies how many.
fn run(ctx: &mut Ctx<'_>, args: Args<'_>, form: Form) -> CmdResult {
    let src = args.get(if form == Form::SearchStore { 2 } else { 1 });
    let exists = source_exists(ctx, src)?;
    let q = parse(ctx, &args, form, exists)?;
    let limit = if q.any { q.count } else { 0 };
    let returned = |n: usize| {
        if q.count == 0 {
            n
        } else {
            n.min(q.count as usize)
        }
    };
    if let Some((dest, as_distance)) = q.store {
        let shape = q.shape;
        let stored = |mut points: Vec<Point>| {
            order(&q, &mut points);
            points.truncate(returned(points.len()));
            let stored: Vec<(f64, Vec<u8>)> = points
                .into_iter()
                .map(|p| match as_distance {
                    true => (p.meters / shape.meters_per_unit, p.member),
                    false => (p.score, p.member),
                })
                .collect();
            stored
        };
        let keys = [dest, src];
        // A paged source: only the pages of the cells' ranges are read.
        if exists && is_paged(&mut ctx.thread.cache, src) {
            let n = update_into(&mut ctx.thread.cache, keys, |z, items, changes, w| {
                let points = stored(search_paged(&shape, limit, z)?);
                Ok(Some(replace(items, changes, w, &points)?))
            })?;
            if let Some(n) = n {
                ctx.out.int(n as i64);
                return Ok(());
            }
        }
        // Read and replace in one update, as ZRANGESTORE does.
        let buf = &mut ctx.conn.scratch;
        let n = update_store(&mut ctx.thread.cache, &keys, true, |items, changes, w| {
            let found = w.load(items, 1, ZSET, buf)?.is_some();
            let entries = zset::entries(view(buf, found)?)?;
            let points = match exists && found {
                true => stored(search_entries(&shape, limit, &entries)),
                false => Vec::new(),
            };
            replace(items, changes, w, &points)
        })?;
        ctx.conn.scratch.clear();
        ctx.out.int(n as i64);
        return Ok(());
    }
    if !exists {
        ctx.out.array(0);
        return Ok(());
    }
    let shape = q.shape;
    let mut found = match run_paged(ctx, src, &[], |z| search_paged(&shape, limit, z))? {
        Some(points) => points,
        None => with_entries(ctx, src, |_, entries| {
            Ok(search_entries(&shape, limit, entries))
        })?,
    };
    order(&q, &mut found);
    found.truncate(returned(found.len()));
    reply(ctx, &q, &found);
    Ok(())
}

pub fn geosearch(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run(ctx, args, Form::Search)
}

pub fn geosearchstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run(ctx, args, Form::SearchStore)
}

pub fn georadius(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run(ctx, args, Form::RadiusAt { store: true })
}

pub fn georadius_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run(ctx, args, Form::RadiusAt { store: false })
}

pub fn georadiusbymember(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run(ctx, args, Form::RadiusByMember { store: true })
}

pub fn georadiusbymember_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run(ctx, args, Form::RadiusByMember { store: false })
}

/// GEORADIUS's and GEORADIUSBYMEMBER's keys: the source, and the key after
/// a STORE or STOREDIST.
pub fn radius_keys<'a>(args: Args<'a>, f: &mut dyn FnMut(&'a [u8])) {
    if args.len() < 2 {
        return;
    }
    f(args.get(1));
    let first_option = if args.is(0, "georadiusbymember") {
        5
    } else {
        6
    };
    let mut i = first_option;
    while i + 1 < args.len() {
        if args.is(i, "store") || args.is(i, "storedist") {
            f(args.get(i + 1));
            i += 1;
        }
        i += 1;
    }
}
