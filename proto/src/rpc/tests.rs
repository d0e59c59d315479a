use super::*;

#[test]
fn header_bytes_round_trip() {
    for (i, m) in Method::ALL.iter().enumerate() {
        assert_eq!(*m as usize, i);
        assert_eq!(Method::from_code(i as u8), Some(*m));
        let h = FrameHeader {
            flags: FLAG_FINAL | FLAG_ERROR,
            method: *m,
            body_len: 0,
            id: u64::MAX - i as u64,
        };
        let b = h.to_bytes();
        assert_eq!(&b[..2], b"C\x01");
        assert_eq!(&b[16..], &[0; 8]);
        assert_eq!(FrameHeader::parse(&b), Ok(Some((h, HEADER_LEN))));
        assert!(h.has(FLAG_ERROR) && !h.has(FLAG_PARTIAL));
    }
    assert_eq!(Method::from_code(15), None);
    assert_eq!(Method::Batch.op_type(), schema::Op::Batch);
}

#[test]
fn hand_laid_values_verify_and_append() {
    let mut out = b"earlier frames".to_vec();
    for len in 0..12usize {
        let start = out.len();
        let value: Vec<u8> = (0..len as u8).collect();
        ReplyWriter::value_frame(&mut out, len as u64, Method::Get, &value);
        let (h, n) = FrameHeader::parse(&out[start..]).unwrap().unwrap();
        assert_eq!(n, out.len() - start);
        assert_eq!(n % 4, 0);
        let reply = decode_reply(&h, &out[start + HEADER_LEN..]).unwrap();
        let v = reply.answer_as_value().unwrap();
        assert!(v.found());
        assert_eq!(v.value().unwrap().bytes(), &value[..]);
    }
    assert!(out.starts_with(b"earlier frames"));
}

#[test]
fn error_codes_follow_the_schema() {
    assert_eq!(RequestError::UnknownOp(40).code(), ErrorCode::UnknownMethod);
    assert_eq!(RequestError::NestedBatch.code(), ErrorCode::BadFrame);
    assert_eq!(ErrorCode::Plugin.0, 11);
    assert_eq!(
        FrameError::Version(9).to_string(),
        "frame version 9, this server speaks 1"
    );
    let opts = Limits::default().verifier_options();
    assert_eq!(
        (opts.max_depth, opts.max_apparent_size),
        (16, DEFAULT_MAX_FRAME)
    );
}

#[test]
#[should_panic(expected = "earlier frame")]
fn a_stale_body_is_refused() {
    let mut w = ReplyWriter::new();
    let mut out = Vec::new();
    let stale = w.int(1);
    w.finish(&mut out, 1, Method::Incr, stale);
    w.finish(&mut out, 2, Method::Incr, stale);
}

#[test]
fn a_value_frame_begun_and_ended_equals_one_reserved() {
    for len in [0usize, 1, 3, 4, 5, 1000] {
        let value: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut reserved = Vec::new();
        ReplyWriter::value_frame(&mut reserved, 9, Method::Get, &value);
        let mut begun = Vec::new();
        ReplyWriter::begin_value(&mut begun, 9, Method::Get, len);
        begun.extend_from_slice(&value);
        ReplyWriter::end_value(&mut begun, len);
        assert_eq!(begun, reserved, "len {len}");
    }
}
