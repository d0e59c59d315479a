//! Building request frames (clients, tests, the fuzz target): each method
//! builds one operation in a reusable `FlatBufferBuilder` and returns an
//! [`OpBody`]; [`RequestWriter::finish`] wraps it in a `Request`, appends
//! header and body to the caller's buffer and resets the builder. A batch
//! is built by [`RequestWriter::push_op`] of each operation, then
//! [`RequestWriter::batch`].

use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, WIPOffset};

use super::frame::{FrameHeader, Method, HEADER_LEN};
use super::schema::{self, Condition};
use super::FLAG_BATCH;

/// One operation built in a [`RequestWriter`], valid until its next
/// `finish` (using it later panics).
#[derive(Clone, Copy, Debug)]
pub struct OpBody {
    method: Method,
    off: u32,
    generation: u32,
}

/// A reusable request encoder (its buffers are kept between frames).
#[derive(Default)]
pub struct RequestWriter {
    fbb: FlatBufferBuilder<'static>,
    items: Vec<u32>,
    ops: Vec<u32>,
    generation: u32,
}

macro_rules! op {
    ($self:ident, $table:ident, $method:ident, $args:expr) => {{
        let off = schema::$table::create(&mut $self.fbb, &$args);
        $self.body(Method::$method, off.as_union_value())
    }};
}

impl RequestWriter {
    pub fn new() -> Self {
        Self::default()
    }

    fn body(&self, method: Method, off: WIPOffset<UnionWIPOffset>) -> OpBody {
        OpBody {
            method,
            off: off.value(),
            generation: self.generation,
        }
    }

    fn key_list<'k>(
        &mut self,
        keys: impl IntoIterator<Item = &'k [u8]>,
    ) -> WIPOffset<flatbuffers::Vector<'static, flatbuffers::ForwardsUOffset<schema::Key<'static>>>>
    {
        self.items.clear();
        for k in keys {
            let key = Some(self.fbb.create_vector(k));
            self.items
                .push(schema::Key::create(&mut self.fbb, &schema::KeyArgs { key }).value());
        }
        let items = &self.items;
        self.fbb
            .create_vector_from_iter(items.iter().map(|&o| WIPOffset::<schema::Key>::new(o)))
    }

    pub fn get(&mut self, key: &[u8]) -> OpBody {
        let key = Some(self.fbb.create_vector(key));
        op!(self, Get, Get, schema::GetArgs { key })
    }

    pub fn set(&mut self, key: &[u8], value: &[u8], ttl_ms: u64, condition: Condition) -> OpBody {
        let value = Some(self.fbb.create_vector(value));
        let key = Some(self.fbb.create_vector(key));
        op!(
            self,
            Set,
            Set,
            schema::SetArgs {
                key,
                value,
                ttl_ms,
                condition
            }
        )
    }

    pub fn delete<'k>(&mut self, keys: impl IntoIterator<Item = &'k [u8]>) -> OpBody {
        let keys = Some(self.key_list(keys));
        op!(self, Delete, Delete, schema::DeleteArgs { keys })
    }

    pub fn exists<'k>(&mut self, keys: impl IntoIterator<Item = &'k [u8]>) -> OpBody {
        let keys = Some(self.key_list(keys));
        op!(self, Exists, Exists, schema::ExistsArgs { keys })
    }

    pub fn expire(&mut self, key: &[u8], ttl_ms: u64) -> OpBody {
        let key = Some(self.fbb.create_vector(key));
        op!(self, Expire, Expire, schema::ExpireArgs { key, ttl_ms })
    }

    pub fn ttl(&mut self, key: &[u8]) -> OpBody {
        let key = Some(self.fbb.create_vector(key));
        op!(self, Ttl, Ttl, schema::TtlArgs { key })
    }

    pub fn incr(&mut self, key: &[u8], by: i64) -> OpBody {
        let key = Some(self.fbb.create_vector(key));
        op!(self, Incr, Incr, schema::IncrArgs { key, by })
    }

    pub fn mget<'k>(&mut self, keys: impl IntoIterator<Item = &'k [u8]>) -> OpBody {
        let keys = Some(self.key_list(keys));
        op!(self, MGet, MGet, schema::MGetArgs { keys })
    }

    pub fn mset<'k>(&mut self, pairs: impl IntoIterator<Item = (&'k [u8], &'k [u8])>) -> OpBody {
        self.items.clear();
        for (k, v) in pairs {
            let value = Some(self.fbb.create_vector(v));
            let key = Some(self.fbb.create_vector(k));
            let pair = schema::Pair::create(&mut self.fbb, &schema::PairArgs { key, value });
            self.items.push(pair.value());
        }
        let items = &self.items;
        let pairs = self
            .fbb
            .create_vector_from_iter(items.iter().map(|&o| WIPOffset::<schema::Pair>::new(o)));
        op!(self, MSet, MSet, schema::MSetArgs { pairs: Some(pairs) })
    }

    pub fn scan(&mut self, cursor: u64, pattern: Option<&str>, count: u32) -> OpBody {
        let match_ = pattern.map(|p| self.fbb.create_string(p));
        op!(
            self,
            Scan,
            Scan,
            schema::ScanArgs {
                cursor,
                match_,
                count
            }
        )
    }

    pub fn call(&mut self, name: &str, payload: &[u8], options: &str) -> OpBody {
        let payload = Some(self.fbb.create_vector(payload));
        let options = Some(self.fbb.create_string(options));
        let name = Some(self.fbb.create_string(name));
        op!(
            self,
            Call,
            Call,
            schema::CallArgs {
                name,
                payload,
                options
            }
        )
    }

    pub fn stats(&mut self, section: Option<&str>) -> OpBody {
        let section = section.map(|s| self.fbb.create_string(s));
        op!(self, Stats, Stats, schema::StatsArgs { section })
    }

    pub fn hello<'f>(
        &mut self,
        version: u32,
        client_name: Option<&str>,
        password: Option<&str>,
        features: impl IntoIterator<Item = &'f str>,
    ) -> OpBody {
        self.items.clear();
        for f in features {
            self.items.push(self.fbb.create_string(f).value());
        }
        let items = &self.items;
        let features = Some(
            self.fbb
                .create_vector_from_iter(items.iter().map(|&o| WIPOffset::<&str>::new(o))),
        );
        let client_name = client_name.map(|s| self.fbb.create_string(s));
        let password = password.map(|s| self.fbb.create_string(s));
        op!(
            self,
            Hello,
            Hello,
            schema::HelloArgs {
                version,
                client_name,
                password,
                features
            }
        )
    }

    /// Adds `op` to the batch being built (see [`RequestWriter::batch`]).
    pub fn push_op(&mut self, op: OpBody) {
        assert_eq!(
            op.generation, self.generation,
            "an OpBody of an earlier frame"
        );
        let operation = schema::Operation::create(
            &mut self.fbb,
            &schema::OperationArgs {
                op_type: op.method.op_type(),
                op: Some(WIPOffset::new(op.off)),
            },
        );
        self.ops.push(operation.value());
    }

    /// A `Batch` of the operations pushed since the last frame.
    pub fn batch(&mut self) -> OpBody {
        let ops = &self.ops;
        let ops = self
            .fbb
            .create_vector_from_iter(ops.iter().map(|&o| WIPOffset::<schema::Operation>::new(o)));
        self.ops.clear();
        op!(self, Batch, Batch, schema::BatchArgs { ops: Some(ops) })
    }

    /// Appends the frame of request `id` holding `op` to `out` and resets
    /// the builder for the next one.
    pub fn finish(
        &mut self,
        out: &mut Vec<u8>,
        id: u64,
        deadline_ms: u64,
        priority: u8,
        op: OpBody,
    ) {
        assert_eq!(
            op.generation, self.generation,
            "an OpBody of an earlier frame"
        );
        let req = schema::Request::create(
            &mut self.fbb,
            &schema::RequestArgs {
                deadline_ms,
                priority,
                op_type: op.method.op_type(),
                op: Some(WIPOffset::new(op.off)),
            },
        );
        self.fbb.finish_minimal(req);
        let body = self.fbb.finished_data();
        let flags = if op.method == Method::Batch {
            FLAG_BATCH
        } else {
            0
        };
        let header = FrameHeader {
            flags,
            method: op.method,
            body_len: body.len() as u32,
            id,
        };
        out.reserve(HEADER_LEN + body.len());
        out.extend_from_slice(&header.to_bytes());
        out.extend_from_slice(body);
        self.fbb.reset();
        self.ops.clear();
        self.generation = self.generation.wrapping_add(1);
    }
}
