//! Geohash arithmetic as Redis's geohash.c and geohash_helper.c do it (a
//! position is a 52-bit interleaving of longitude and latitude cells in
//! the Web Mercator latitude range, stored as a sorted-set score), so
//! scores, decoded positions, the 9 boxes a search reads and every
//! distance are the same numbers Redis computes.

/// Latitudes past these cannot be indexed (Web Mercator's limit).
pub const LAT_MIN: f64 = -85.051_128_78;
pub const LAT_MAX: f64 = 85.051_128_78;
pub const LON_MIN: f64 = -180.0;
pub const LON_MAX: f64 = 180.0;
/// Bits per coordinate of a stored position.
pub const STEP_MAX: u8 = 26;
/// The Earth's radius Redis uses, in meters.
const EARTH_RADIUS_M: f64 = 6_372_797.560_856;
/// Half the Mercator world's width, in meters.
const MERCATOR_MAX: f64 = 20_037_726.37;

/// A cell: `step` bits of each coordinate, interleaved (latitude in the
/// even bits, longitude in the odd ones). Bits 0 and step 0: no cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    pub bits: u64,
    pub step: u8,
}

impl Cell {
    const NONE: Cell = Cell { bits: 0, step: 0 };

    pub fn is_none(&self) -> bool {
        self.bits == 0 && self.step == 0
    }

    /// The scores of the positions inside this cell: `[min, max)`.
    pub fn score_range(&self) -> (f64, f64) {
        let shift = 52 - 2 * u32::from(self.step);
        (
            (self.bits << shift) as f64,
            ((self.bits + 1) << shift) as f64,
        )
    }
}

/// A cell's bounds in degrees.
#[derive(Debug, Clone, Copy)]
pub struct Area {
    pub lon: (f64, f64),
    pub lat: (f64, f64),
}

/// The cell of `step` bits holding (lon, lat) in the given ranges; None
/// outside them or the indexable limits.
fn encode_in(
    lon_range: (f64, f64),
    lat_range: (f64, f64),
    lon: f64,
    lat: f64,
    step: u8,
) -> Option<Cell> {
    if !(LON_MIN..=LON_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return None;
    }
    if lat < lat_range.0 || lat > lat_range.1 || lon < lon_range.0 || lon > lon_range.1 {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_offset = (lat - lat_range.0) / (lat_range.1 - lat_range.0) * scale;
    let lon_offset = (lon - lon_range.0) / (lon_range.1 - lon_range.0) * scale;
    // C converts to uint32_t by truncation (the offsets are >= 0).
    Some(Cell {
        bits: interleave(lat_offset as u32, lon_offset as u32),
        step,
    })
}

/// The cell of `step` bits holding (lon, lat) in the index's ranges.
pub fn encode(lon: f64, lat: f64, step: u8) -> Option<Cell> {
    encode_in((LON_MIN, LON_MAX), (LAT_MIN, LAT_MAX), lon, lat, step)
}

/// The score a position is stored at.
pub fn score_of(lon: f64, lat: f64) -> Option<f64> {
    let cell = encode(lon, lat, STEP_MAX)?;
    Some(cell.score_range().0)
}

/// A cell's bounds in the index's ranges.
pub fn decode(cell: Cell) -> Area {
    let (ilat, ilon) = deinterleave(cell.bits);
    let scale = (1u64 << cell.step) as f64;
    let (lat_scale, lon_scale) = (LAT_MAX - LAT_MIN, LON_MAX - LON_MIN);
    Area {
        lat: (
            LAT_MIN + (f64::from(ilat) / scale) * lat_scale,
            LAT_MIN + ((f64::from(ilat) + 1.0) / scale) * lat_scale,
        ),
        lon: (
            LON_MIN + (f64::from(ilon) / scale) * lon_scale,
            LON_MIN + ((f64::from(ilon) + 1.0) / scale) * lon_scale,
        ),
    }
}

/// The position a score stands for: the centre of its cell, clamped.
pub fn position_of(score: f64) -> (f64, f64) {
    // C's (uint64_t) conversion of the double; a stored score is exact.
    let area = decode(Cell {
        bits: score as u64,
        step: STEP_MAX,
    });
    let lon = ((area.lon.0 + area.lon.1) / 2.0).clamp(LON_MIN, LON_MAX);
    let lat = ((area.lat.0 + area.lat.1) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

/// GEOHASH's 11-character text: the position re-encoded in the standard
/// latitude range (-90..90), 52 bits in base 32, a final '0'.
pub fn standard_text(score: f64) -> [u8; 11] {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (lon, lat) = position_of(score);
    let bits = encode_in((-180.0, 180.0), (-90.0, 90.0), lon, lat, STEP_MAX).map_or(0, |c| c.bits);
    let mut text = [b'0'; 11];
    for (i, c) in text.iter_mut().take(10).enumerate() {
        *c = ALPHABET[((bits >> (52 - (i + 1) * 5)) & 0x1f) as usize];
    }
    text
}

/// Spreads the 32 bits of `v` to the even bit positions.
fn spread(v: u32) -> u64 {
    let mut x = u64::from(v);
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

/// Gathers the even bit positions of `x` into 32 bits.
fn gather(x: u64) -> u32 {
    let mut x = x & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    ((x | (x >> 16)) & 0x0000_0000_FFFF_FFFF) as u32
}

fn interleave(lat: u32, lon: u32) -> u64 {
    spread(lat) | (spread(lon) << 1)
}

/// (latitude cell, longitude cell).
fn deinterleave(bits: u64) -> (u32, u32) {
    (gather(bits), gather(bits >> 1))
}

/// The cell `d` columns east (or west, negative) or `d` rows north (or
/// south): longitude is in the odd bits.
fn moved(cell: Cell, d_lon: i8, d_lat: i8) -> Cell {
    const ODD: u64 = 0xaaaa_aaaa_aaaa_aaaa;
    const EVEN: u64 = 0x5555_5555_5555_5555;
    let shift = 64 - 2 * u32::from(cell.step);
    let step_along = |bits: u64, mask: u64, other: u64, d: i8| -> u64 {
        if d == 0 {
            return bits & mask;
        }
        let own = bits & mask;
        let zz = other >> shift;
        let moved = if d > 0 {
            own.wrapping_add(zz + 1)
        } else {
            (own | zz).wrapping_sub(zz + 1)
        };
        moved & (mask >> shift)
    };
    let lon = step_along(cell.bits, ODD, EVEN, d_lon);
    let lat = step_along(cell.bits, EVEN, ODD, d_lat);
    Cell {
        bits: lon | lat,
        step: cell.step,
    }
}

/// C's deg_rad and rad_deg (not `to_radians`/`to_degrees`, whose
/// rounding differs in the last bit, which can move a search's edge).
fn deg_rad(deg: f64) -> f64 {
    deg * (std::f64::consts::PI / 180.0)
}

fn rad_deg(rad: f64) -> f64 {
    rad / (std::f64::consts::PI / 180.0)
}

/// What a search covers, in its unit.
#[derive(Debug, Clone, Copy)]
pub enum Extent {
    Radius(f64),
    Box { width: f64, height: f64 },
}

/// A search: its centre, extent, and the unit's size in meters.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub lon: f64,
    pub lat: f64,
    pub extent: Extent,
    pub meters_per_unit: f64,
}

/// How many bits per coordinate make a cell about the size of a search
/// of `range_m` meters around latitude `lat`.
fn steps_for(range_m: f64, lat: f64) -> u8 {
    if range_m == 0.0 {
        return 26;
    }
    let (mut range, mut step) = (range_m, 1i32);
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

impl Shape {
    /// (min lon, min lat, max lon, max lat).
    fn bounding_box(&self) -> (f64, f64, f64, f64) {
        let m = self.meters_per_unit;
        let (height, width) = match self.extent {
            Extent::Radius(r) => (m * r, m * r),
            Extent::Box { width, height } => (m * (height / 2.0), m * (width / 2.0)),
        };
        let lat = self.lat;
        let lat_delta = rad_deg(height / EARTH_RADIUS_M);
        let lon_delta_top = rad_deg(width / EARTH_RADIUS_M / deg_rad(lat + lat_delta).cos());
        let lon_delta_bottom = rad_deg(width / EARTH_RADIUS_M / deg_rad(lat - lat_delta).cos());
        // Which edge is wider depends on the hemisphere.
        let lon_delta = if lat < 0.0 {
            lon_delta_bottom
        } else {
            lon_delta_top
        };
        (
            self.lon - lon_delta,
            lat - lat_delta,
            self.lon + lon_delta,
            lat + lat_delta,
        )
    }

    /// The cells a search reads, in Redis's order (its own, N, S, E, W,
    /// NE, NW, SE, SW), the useless ones `Cell::NONE`.
    pub fn cells(&self) -> [Cell; 9] {
        let (min_lon, min_lat, max_lon, max_lat) = self.bounding_box();
        let radius = match self.extent {
            Extent::Radius(r) => r,
            Extent::Box { width, height } => {
                ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
            }
        } * self.meters_per_unit;
        let mut steps = steps_for(radius, self.lat);
        let around = |steps: u8| {
            let cell = encode(self.lon, self.lat, steps).unwrap_or(Cell {
                bits: 0,
                step: steps,
            });
            let cells = [
                cell,
                moved(cell, 0, 1),
                moved(cell, 0, -1),
                moved(cell, 1, 0),
                moved(cell, -1, 0),
                moved(cell, 1, 1),
                moved(cell, -1, 1),
                moved(cell, 1, -1),
                moved(cell, -1, -1),
            ];
            (cells, decode(cell))
        };
        let (mut cells, mut area) = around(steps);
        // Near a cell's edge the estimated step can leave part of the
        // search outside the 9 cells: one step coarser then.
        let short = decode(cells[1]).lat.1 < max_lat
            || decode(cells[2]).lat.0 > min_lat
            || decode(cells[3]).lon.1 < max_lon
            || decode(cells[4]).lon.0 > min_lon;
        if steps > 1 && short {
            steps -= 1;
            (cells, area) = around(steps);
        }
        if steps >= 2 {
            let mut drop = |which: [usize; 3]| which.iter().for_each(|&i| cells[i] = Cell::NONE);
            if area.lat.0 < min_lat {
                drop([2, 8, 7]);
            }
            if area.lat.1 > max_lat {
                drop([1, 5, 6]);
            }
            if area.lon.0 < min_lon {
                drop([4, 8, 6]);
            }
            if area.lon.1 > max_lon {
                drop([3, 7, 5]);
            }
        }
        cells
    }

    /// The distance in meters from the centre to the point (x, y), None
    /// when it is outside the shape.
    pub fn distance_to(&self, x: f64, y: f64) -> Option<f64> {
        let m = self.meters_per_unit;
        match self.extent {
            Extent::Radius(r) => Some(distance(self.lon, self.lat, x, y)).filter(|&d| d <= r * m),
            Extent::Box { width, height } => {
                let (width_m, height_m) = (width * m, height * m);
                if lat_distance(y, self.lat) > height_m / 2.0
                    || distance(x, y, self.lon, y) > width_m / 2.0
                {
                    return None;
                }
                Some(distance(self.lon, self.lat, x, y))
            }
        }
    }
}

fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_M * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// Haversine distance in meters.
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let v = ((deg_rad(lon2) - deg_rad(lon1)) / 2.0).sin();
    // Same longitude: the cheaper latitude distance, as Redis 7 does.
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let (lat1r, lat2r) = (deg_rad(lat1), deg_rad(lat2));
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_M * a.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaving_round_trips() {
        for (a, b) in [
            (0u32, 0u32),
            (1, 0),
            (0, 1),
            (u32::MAX, 7),
            (0x1234_5678, 0x9abc_def0),
        ] {
            assert_eq!(deinterleave(interleave(a, b)), (a, b));
        }
    }

    #[test]
    fn redis_documented_positions() {
        // Palermo and Catania, from Redis's GEO documentation.
        let palermo = score_of(13.361389, 38.115556).unwrap();
        let catania = score_of(15.087269, 37.502669).unwrap();
        assert_eq!(palermo, 3_479_099_956_230_698.0);
        assert_eq!(catania, 3_479_447_370_796_909.0);
        let (lon, lat) = position_of(palermo);
        assert_eq!(format!("{lon:.17}"), "13.36138933897018433");
        assert_eq!(format!("{lat:.17}"), "38.11555639549629859");
        let (x, y) = position_of(catania);
        assert_eq!(format!("{:.4}", distance(lon, lat, x, y)), "166274.1516");
        assert_eq!(&standard_text(palermo), b"sqc8b49rny0");
        assert_eq!(&standard_text(catania), b"sqdtr74hyu0");
    }

    #[test]
    fn positions_outside_the_index_do_not_encode() {
        assert!(score_of(180.1, 0.0).is_none());
        assert!(score_of(0.0, 85.06).is_none());
        assert!(score_of(-180.0, -85.05112878).is_some());
    }

    #[test]
    fn neighbours_are_one_cell_apart() {
        let cell = encode(13.36, 38.11, 10).unwrap();
        let here = decode(cell);
        let east = decode(moved(cell, 1, 0));
        let north = decode(moved(cell, 0, 1));
        assert!((east.lon.0 - here.lon.1).abs() < 1e-9);
        assert!((north.lat.0 - here.lat.1).abs() < 1e-9);
        assert_eq!(moved(moved(cell, -1, -1), 1, 1), cell);
    }
}
