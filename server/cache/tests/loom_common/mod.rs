//! A tiny cache layout for the loom models: the production geometry code
//! places one home bucket, the free-list head, the occupancy summary (one
//! count word, one bit word) and a few segments; only
//! those words exist (loom atomics are costly).

use citadel_cache::loom_model::*;

pub const SEGMENTS: u32 = 3;
/// Bytes of item data each model segment has (at its start).
pub const DATA: usize = 16;

pub struct Model {
    pub region: Region,
    pub geo: Geometry,
}

#[allow(dead_code)] // each model uses a subset
impl Model {
    pub fn new() -> Model {
        let geo = Geometry::from_parts(0, SEGMENTS, [1; 5]);
        let home = bucket_off(&geo, 0, 0);
        let summary = geo.summary_off..geo.summary_off + 16;
        let mut u64s = vec![H_FREE_HEAD..H_FREE_HEAD + 8, home..home + 64, summary];
        let mut u32s = Vec::new();
        for id in 0..SEGMENTS as usize {
            let hdr = geo.seghdr_off + id * SEGMENT_HEADER_BYTES;
            u32s.push(hdr..hdr + 24);
            u64s.push(hdr + 24..hdr + 40);
            let data = geo.segdata_off + id * SEGMENT_SIZE;
            u64s.push(data..data + DATA);
        }
        let len = geo.segdata_off + SEGMENTS as usize * SEGMENT_SIZE;
        let region = Region::model(len, &u64s, &u32s);
        Model { region, geo }
    }

    pub fn locks(&self) -> Locks<'_> {
        Locks {
            region: &self.region,
            geo: &self.geo,
        }
    }

    pub fn occupancy(&self) -> Occupancy<'_> {
        Occupancy {
            region: &self.region,
            geo: &self.geo,
        }
    }

    pub fn free_list(&self) -> FreeList<'_> {
        FreeList {
            region: &self.region,
            geo: &self.geo,
        }
    }

    pub fn seg(&self, id: u32) -> Seg<'_> {
        Seg::new(&self.region, &self.geo, id)
    }

    /// The word of entry slot `i` (1..8) of the home bucket.
    pub fn slot(&self, i: usize) -> usize {
        bucket_off(&self.geo, 0, 0) + 8 * i
    }
}
