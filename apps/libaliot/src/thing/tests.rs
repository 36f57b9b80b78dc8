//! Alink envelopes against JSON written by hand from doc-detail/89301's examples.

use super::*;

#[test]
fn a_request_is_the_documented_form() {
    #[derive(Serialize)]
    struct P {
        temperature: f32,
    }
    let mut buf = [0u8; 128];
    let n = encode_request(
        &mut buf,
        123,
        "thing.event.property.post",
        &P { temperature: 21.5 },
    )
    .unwrap();
    assert_eq!(
        core::str::from_utf8(&buf[..n]).unwrap(),
        r#"{"id":"123","version":"1.0","params":{"temperature":21.5},"method":"thing.event.property.post"}"#
    );
    // One byte short of its 95: refused, not cut.
    let mut short = [0u8; 94];
    assert_eq!(
        encode_request(
            &mut short,
            123,
            "thing.event.property.post",
            &P { temperature: 21.5 }
        ),
        Err(ThingError::TooLong)
    );
}

#[test]
fn a_reply_carries_code_data_and_message() {
    #[derive(Serialize)]
    struct Out {
        #[serde(with = "bool01")]
        applied: bool,
    }
    let mut buf = [0u8; 128];
    let n = encode_reply(&mut buf, 4294967295, 200, &Out { applied: true }, None).unwrap();
    assert_eq!(
        core::str::from_utf8(&buf[..n]).unwrap(),
        r#"{"id":"4294967295","code":200,"data":{"applied":1},"version":"1.0"}"#
    );
    let n = encode_reply(&mut buf, 0, 460, &Empty {}, Some("bad params")).unwrap();
    assert_eq!(
        core::str::from_utf8(&buf[..n]).unwrap(),
        r#"{"id":"0","code":460,"data":{},"message":"bad params","version":"1.0"}"#
    );
}

#[test]
fn replies_are_read_with_string_or_number_ids() {
    let platform = br#"{"code":200,"data":{},"id":"123","message":"success","method":"thing.event.property.post","version":"1.0"}"#;
    assert_eq!(decode_reply(platform), Ok(Reply { id: 123, code: 200 }));
    let numeric = br#"{"id":45,"code":6813}"#;
    assert_eq!(decode_reply(numeric), Ok(Reply { id: 45, code: 6813 }));
    for bad in [
        &br#"{"id":"12a","code":200}"#[..],
        br#"{"id":"99999999999","code":200}"#,
        br#"{"code":200}"#,
        br#"{"id":"1"}"#,
        br#"not json"#,
        b"",
    ] {
        assert_eq!(
            decode_reply(bad),
            Err(ThingError::Malformed),
            "{:?}",
            core::str::from_utf8(bad)
        );
    }
}

#[test]
fn requests_are_read_with_their_typed_params() {
    #[derive(Debug, PartialEq, Deserialize)]
    struct Set {
        #[serde(default)]
        report_interval: Option<i32>,
    }
    let platform = br#"{"method":"thing.service.property.set","id":"42","params":{"report_interval":60,"other":[1,{"a":"b"}]},"version":"1.0.0"}"#;
    assert_eq!(
        decode_request::<Set>(platform),
        Ok(Request {
            id: 42,
            params: Set {
                report_interval: Some(60)
            }
        })
    );
    let numeric = br#"{"id":7,"params":{}}"#;
    assert_eq!(
        decode_request::<Set>(numeric),
        Ok(Request {
            id: 7,
            params: Set {
                report_interval: None
            }
        })
    );
    // A wrong type: no request, but its id for the error reply.
    let wrong = br#"{"id":"43","params":{"report_interval":"sixty"}}"#;
    assert_eq!(decode_request::<Set>(wrong), Err(ThingError::Malformed));
    assert_eq!(decode_request_id(wrong), Some(43));
    assert_eq!(decode_request_id(b"{"), None);
}

#[test]
fn bools_are_zero_or_one() {
    #[derive(Debug, PartialEq, Deserialize)]
    struct B {
        #[serde(with = "bool01")]
        on: bool,
    }
    assert_eq!(
        serde_json_core::from_slice::<B>(br#"{"on":1}"#).map(|r| r.0),
        Ok(B { on: true })
    );
    assert_eq!(
        serde_json_core::from_slice::<B>(br#"{"on":0}"#).map(|r| r.0),
        Ok(B { on: false })
    );
    assert!(serde_json_core::from_slice::<B>(br#"{"on":2}"#).is_err());
}

#[test]
fn ids_count_from_one_and_skip_zero_on_wrap() {
    let mut ids = Ids::new();
    assert_eq!(ids.next_id(), 1);
    assert_eq!(ids.next_id(), 2);
    let mut wrap = Ids { next: u32::MAX };
    assert_eq!(wrap.next_id(), u32::MAX);
    assert_eq!(wrap.next_id(), 1);
    assert_eq!(id_text(0).as_str(), "0");
    assert_eq!(id_text(1_000_000_007).as_str(), "1000000007");
}

#[test]
fn ranges_refuse_nan() {
    assert!(in_range(5, 5, 3600));
    assert!(!in_range(4, 5, 3600));
    assert!(!in_range(f32::NAN, -40.0, 120.0));
    assert!(in_range(120.0f32, -40.0, 120.0));
}
