use super::*;

#[test]
fn call_round_trips_in_place() {
    let opts = CallOptions {
        selection: Selection::EveryNth(5),
        width: 640,
        ..CallOptions::default()
    }
    .to_string();
    let mut buf = vec![0u8; Call::encoded_len(&opts, 5)];
    let n = Call::encode(SourceKind::Key, &opts, b"video", &mut buf);
    assert_eq!(n, buf.len());
    let call = Call::decode(&buf).unwrap();
    assert_eq!(call.source, SourceKind::Key);
    assert_eq!(call.input, b"video");
    let parsed = CallOptions::parse(call.options).unwrap();
    assert_eq!(parsed.selection, Selection::EveryNth(5));
    assert_eq!(parsed.to_string(), opts, "canonical text is stable");
}

#[test]
fn frames_are_checked() {
    let h = FrameHeader {
        index: 3,
        pts_ms: 1200,
        width: 4,
        height: 2,
        stride: 12,
        format: PixelFormat::Rgb24,
        keyframe: true,
    };
    let mut rec = vec![7u8; h.record_len()];
    h.write(&mut rec);
    let (back, pixels) = FrameHeader::decode(&rec).unwrap();
    assert_eq!(back, h);
    assert_eq!(pixels.len(), 24);
    assert!(matches!(
        FrameHeader::decode(&rec[..rec.len() - 1]),
        Err(MessageError::BadFrame(_))
    ));
    let mut narrow = rec.clone();
    narrow[24..28].copy_from_slice(&11u32.to_le_bytes());
    assert!(FrameHeader::decode(&narrow).is_err(), "stride below a row");
}

#[test]
fn results_and_ends_round_trip_and_reject_garbage() {
    let r = ResultMessage {
        index: 9,
        pts_ms: -1,
        json: b"{\"lines\":[]}",
    };
    assert_eq!(ResultMessage::decode(&r.encode()).unwrap(), r);
    let e = End {
        frames: 12,
        json: b"{}",
    };
    assert_eq!(End::decode(&e.encode()).unwrap(), e);
    assert!(matches!(
        End::decode(&r.encode()),
        Err(MessageError::WrongType { .. })
    ));
    assert!(matches!(
        message_type(&[9, VERSION]),
        Err(MessageError::UnknownType(9))
    ));
    assert!(matches!(
        message_type(&[1, 99]),
        Err(MessageError::Version(99))
    ));
    assert!(Call::decode(&[1, VERSION, 0, 0, 255, 255, 255, 255]).is_err());
    assert!(message_type(&[]).is_err());
}

#[test]
fn options_reject_bad_values() {
    assert!(CallOptions::parse("select=every:0").is_err());
    assert!(CallOptions::parse("select=fps:0").is_err());
    assert!(CallOptions::parse("select=fps:nan").is_err());
    assert!(CallOptions::parse("width=9000").is_err());
    assert!(CallOptions::parse("colour=red").is_err());
    assert!(CallOptions::parse("format=yuv").is_err());
    let o = CallOptions::parse("select=fps:2.5;format=gray;max-frames=7").unwrap();
    assert_eq!(o.selection, Selection::PerSecond(2.5));
    assert_eq!(o.format, PixelFormat::Gray8);
    assert_eq!(
        o.to_string(),
        "select=fps:2.5;width=0;height=0;format=gray;max-frames=7"
    );
}
