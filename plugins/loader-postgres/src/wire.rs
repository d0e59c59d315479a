//! The records this plugin reads and writes (`proto/schema/cache.fbs`):
//! `LoadRequest` in; `LoadReply`, `ErrorReply` and `Invalidation` out.

use citadel_proto::envelope::STATUS_OK;
use citadel_proto::schema::{
    Arg, ArgArgs, ErrorReply, ErrorReplyArgs, Invalidation, InvalidationArgs, LoadReply,
    LoadReplyArgs, LoadRequest,
};
use citadel_proto::{Format, Kind};
use flatbuffers::FlatBufferBuilder;

use crate::error::LoadError;

/// The answer to one request: the envelope fields the loader decides, and
/// the payload (the ring code adds id, attempt and deadline).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub kind: Kind,
    pub format: Format,
    pub status: u32,
    pub payload: Vec<u8>,
}

impl Answer {
    /// `LoadReply`: found with `value` (and `ttl_ms`, 0 = server default), or not found.
    pub fn loaded(value: Option<&[u8]>, ttl_ms: u64) -> Self {
        let mut fbb = FlatBufferBuilder::with_capacity(64 + value.map_or(0, <[u8]>::len));
        let value = value.map(|v| fbb.create_vector(v));
        let reply = LoadReply::create(
            &mut fbb,
            &LoadReplyArgs {
                found: value.is_some(),
                value,
                ttl_ms: if value.is_some() { ttl_ms } else { 0 },
            },
        );
        fbb.finish(reply, None);
        Self::flatbuffer(Kind::Reply, STATUS_OK, fbb.finished_data().to_vec())
    }

    /// `ErrorReply` (kind `Error`, status = code = the error's `ErrorCode`).
    pub fn failed(e: &LoadError) -> Self {
        let mut fbb = FlatBufferBuilder::with_capacity(128);
        let message = fbb.create_string(&e.to_string());
        let code = e.code().0;
        let reply = ErrorReply::create(
            &mut fbb,
            &ErrorReplyArgs {
                code,
                message: Some(message),
            },
        );
        fbb.finish(reply, None);
        Self::flatbuffer(Kind::Error, code, fbb.finished_data().to_vec())
    }

    /// An `Error` whose payload is plain text (the SDKs' own failures).
    pub fn raw_error(kind: Kind, status: u32, text: &str) -> Self {
        Self {
            kind,
            format: Format::Raw,
            status,
            payload: text.as_bytes().to_vec(),
        }
    }

    /// An unsolicited `Invalidation` of `keys`, or a resync (no keys).
    pub fn invalidation(keys: &[Vec<u8>], resync: bool) -> Self {
        let mut fbb =
            FlatBufferBuilder::with_capacity(64 + keys.iter().map(Vec::len).sum::<usize>());
        let args: Vec<_> = keys
            .iter()
            .map(|k| {
                let value = Some(fbb.create_vector(k));
                Arg::create(&mut fbb, &ArgArgs { value })
            })
            .collect();
        let keys = Some(fbb.create_vector(&args));
        let inv = Invalidation::create(&mut fbb, &InvalidationArgs { keys, resync });
        fbb.finish(inv, None);
        Self::flatbuffer(Kind::Invalidation, STATUS_OK, fbb.finished_data().to_vec())
    }

    fn flatbuffer(kind: Kind, status: u32, payload: Vec<u8>) -> Self {
        Self {
            kind,
            format: Format::FlatBuffer,
            status,
            payload,
        }
    }
}

/// The key of a `LoadRequest` payload.
pub fn load_key(format: Format, payload: &[u8]) -> Result<Vec<u8>, LoadError> {
    if format != Format::FlatBuffer {
        return Err(LoadError::BadRequest(
            "expected a LoadRequest FlatBuffer".into(),
        ));
    }
    let req = flatbuffers::root::<LoadRequest>(payload)
        .map_err(|e| LoadError::BadRequest(format!("not a LoadRequest: {e}")))?;
    match req.key() {
        Some(k) if !k.is_empty() => Ok(k.bytes().to_vec()),
        _ => Err(LoadError::BadRequest("LoadRequest without a key".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use citadel_proto::schema::LoadRequestArgs;
    use flatbuffers::root;

    fn request(key: &[u8]) -> Vec<u8> {
        let mut fbb = FlatBufferBuilder::new();
        let key = Some(fbb.create_vector(key));
        let req = LoadRequest::create(
            &mut fbb,
            &LoadRequestArgs {
                key,
                ..Default::default()
            },
        );
        fbb.finish(req, None);
        fbb.finished_data().to_vec()
    }

    #[test]
    fn reads_the_key_and_refuses_what_is_not_a_load_request() {
        assert_eq!(
            load_key(Format::FlatBuffer, &request(b"user:1")).unwrap(),
            b"user:1"
        );
        assert!(matches!(
            load_key(Format::Raw, b"user:1"),
            Err(LoadError::BadRequest(_))
        ));
        assert!(matches!(
            load_key(Format::FlatBuffer, &request(b"")),
            Err(LoadError::BadRequest(_))
        ));
        assert!(matches!(
            load_key(Format::FlatBuffer, b"junk"),
            Err(LoadError::BadRequest(_))
        ));
    }

    #[test]
    fn replies_decode_as_the_schema_says() {
        let a = Answer::loaded(Some(b"v1"), 5000);
        assert_eq!(
            (a.kind, a.format, a.status),
            (Kind::Reply, Format::FlatBuffer, 0)
        );
        let r = root::<LoadReply>(&a.payload).unwrap();
        assert!(r.found());
        assert_eq!(r.value().unwrap().bytes(), b"v1");
        assert_eq!(r.ttl_ms(), 5000);
        let missing = Answer::loaded(None, 5000);
        let r = root::<LoadReply>(&missing.payload).unwrap();
        assert!(!r.found() && r.value().is_none());

        let e = LoadError::Unavailable("connection refused".into());
        let a = Answer::failed(&e);
        assert_eq!((a.kind, a.status), (Kind::Error, 16));
        let r = root::<ErrorReply>(&a.payload).unwrap();
        assert_eq!(r.code(), 16);
        assert_eq!(r.message(), Some("origin unavailable: connection refused"));

        let a = Answer::invalidation(&[b"a".to_vec(), b"bc".to_vec()], false);
        let inv = root::<Invalidation>(&a.payload).unwrap();
        let keys: Vec<&[u8]> = inv
            .keys()
            .unwrap()
            .iter()
            .map(|k| k.value().unwrap().bytes())
            .collect();
        assert_eq!(keys, [b"a".as_slice(), b"bc"]);
        assert!(!inv.resync());
        let resync = Answer::invalidation(&[], true);
        assert!(root::<Invalidation>(&resync.payload).unwrap().resync());
    }
}
