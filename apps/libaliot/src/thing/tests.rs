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
            },
            rrpc: None,
        })
    );
    let numeric = br#"{"id":7,"params":{}}"#;
    assert_eq!(
        decode_request::<Set>(numeric),
        Ok(Request {
            id: 7,
            params: Set {
                report_interval: None
            },
            rrpc: None,
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

#[test]
fn rrpc_ids_name_their_response_topic() {
    let id = rrpc_id("1234567890123456789").unwrap();
    let t = rrpc_response_topic("/sys/pk/dn/rrpc/response/", &id).unwrap();
    assert_eq!(t.as_str(), "/sys/pk/dn/rrpc/response/1234567890123456789");
    for bad in ["", "12/3", "+", "a".repeat(33).as_str(), "1 2"] {
        assert_eq!(rrpc_id(bad), None, "{bad:?}");
    }
    assert_eq!(
        decode_method(br#"{"id":"1","method":"thing.service.calibrate","params":{}}"#).as_deref(),
        Some("thing.service.calibrate")
    );
    assert_eq!(decode_method(br#"{"id":"1"}"#), None);
}

// ---- struct, array and date, through the API generated from tests/fixtures/rich_tsl.json ----

mod rich {
    use super::*;
    use crate::thing_fixture::{
        AlarmsEvent, AlarmsEventListItem, Downlink, Properties, PropertiesLocation, decode,
    };

    const SYS: &str = "/sys/a1NrfDemo01/nrf9160-dk-01/thing/";

    fn text<const N: usize>(s: &str) -> heapless::String<N> {
        heapless::String::try_from(s).unwrap()
    }

    fn posted(p: &Properties) -> std::string::String {
        let mut buf = [0u8; 256];
        let n = encode_request(&mut buf, 7, "thing.event.property.post", p).unwrap();
        std::string::String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn structs_arrays_and_dates_are_posted_in_the_documented_forms() {
        let p = Properties {
            location: Some(PropertiesLocation {
                lat: 31.25,
                lng: 121.5,
                fixed: true,
            }),
            history: Some(heapless::Vec::from_slice(&[20.5, -3.0]).unwrap()),
            since: Some(Date(1_764_547_200_000)),
            tags: Some(heapless::Vec::from_slice(&[text("lab"), text("b2")]).unwrap()),
        };
        assert_eq!(p.check(), Ok(()));
        assert_eq!(
            posted(&p),
            r#"{"id":"7","version":"1.0","params":{"location":{"lat":31.25,"lng":121.5,"fixed":1},"history":[20.5,-3.0],"since":"1764547200000","tags":["lab","b2"]},"method":"thing.event.property.post"}"#
        );
        let event = AlarmsEvent {
            list: heapless::Vec::from_slice(&[AlarmsEventListItem {
                code: 42,
                at: Date(0),
            }])
            .unwrap(),
        };
        assert_eq!(event.check(), Ok(()));
        let mut buf = [0u8; 128];
        let n = encode_request(&mut buf, 8, "thing.event.alarms.post", &event).unwrap();
        assert_eq!(
            core::str::from_utf8(&buf[..n]).unwrap(),
            r#"{"id":"8","version":"1.0","params":{"list":[{"code":42,"at":"0"}]},"method":"thing.event.alarms.post"}"#
        );
    }

    #[test]
    fn ranges_are_checked_inside_structs_and_for_every_item() {
        let mut p = Properties {
            location: Some(PropertiesLocation {
                lat: 91.0,
                lng: 0.0,
                fixed: false,
            }),
            ..Properties::default()
        };
        assert_eq!(p.check(), Err(ThingError::OutOfRange("lat")));
        p.location = None;
        p.history = Some(heapless::Vec::from_slice(&[20.0, 121.0]).unwrap());
        assert_eq!(p.check(), Err(ThingError::OutOfRange("history")));
        p.history = Some(heapless::Vec::from_slice(&[f32::NAN]).unwrap());
        assert_eq!(p.check(), Err(ThingError::OutOfRange("history")));
        let event = AlarmsEvent {
            list: heapless::Vec::from_slice(&[
                AlarmsEventListItem {
                    code: 1,
                    at: Date(5),
                },
                AlarmsEventListItem {
                    code: 100,
                    at: Date(5),
                },
            ])
            .unwrap(),
        };
        assert_eq!(event.check(), Err(ThingError::OutOfRange("code")));
    }

    fn set(params: &str) -> Option<Downlink> {
        let payload = std::format!(
            r#"{{"id":"9","version":"1.0","params":{params},"method":"thing.service.property.set"}}"#
        );
        decode(
            &std::format!("{SYS}service/property/set"),
            payload.as_bytes(),
        )
    }

    #[test]
    fn a_set_of_a_struct_and_an_array_is_read_and_checked() {
        let Some(Downlink::Set(r)) =
            set(r#"{"location":{"lat":-33.5,"lng":151.25,"fixed":0},"tags":["x"]}"#)
        else {
            panic!("a good set");
        };
        assert_eq!(r.id, 9);
        let location = r.params.location.unwrap();
        assert_eq!(
            (location.lat, location.lng, location.fixed),
            (-33.5, 151.25, false)
        );
        assert_eq!(r.params.tags.unwrap().as_slice(), [text::<8>("x")]);
        for (params, error) in [
            // Out of range inside the struct.
            (
                r#"{"location":{"lat":0,"lng":181,"fixed":1}}"#,
                ThingError::OutOfRange("lng"),
            ),
            // More items than the TSL's size, a text longer than its length, a field missing
            // from the struct, an item of the wrong type.
            (r#"{"tags":["a","b","c"]}"#, ThingError::Malformed),
            (r#"{"tags":["123456789"]}"#, ThingError::Malformed),
            (r#"{"location":{"lat":0,"fixed":1}}"#, ThingError::Malformed),
            (r#"{"tags":[1]}"#, ThingError::Malformed),
        ] {
            match set(params) {
                Some(Downlink::Invalid(bad)) => {
                    assert_eq!(bad.error, error, "{params}");
                    assert_eq!(bad.id, Some(9), "{params}");
                }
                other => panic!("{params}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_service_with_an_array_input_is_checked_item_by_item() {
        let call = |params: &str| {
            let payload = std::format!(
                r#"{{"id":"3","version":"1.0","params":{params},"method":"thing.service.setpoints"}}"#
            );
            decode(&std::format!("{SYS}service/setpoints"), payload.as_bytes())
        };
        let Some(Downlink::Setpoints(r)) = call(r#"{"values":[0,5,10]}"#) else {
            panic!("a good call");
        };
        assert_eq!(r.params.values.as_slice(), [0, 5, 10]);
        match call(r#"{"values":[0,11]}"#) {
            Some(Downlink::Invalid(bad)) => assert_eq!(bad.error, ThingError::OutOfRange("values")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dates_are_strings_of_digits() {
        #[derive(serde::Deserialize, Debug)]
        struct D {
            at: Date,
        }
        let read = |json: &str| serde_json_core::from_str::<D>(json).map(|(d, _)| d.at);
        assert_eq!(
            read(r#"{"at":"1764547200000"}"#),
            Ok(Date(1_764_547_200_000))
        );
        assert_eq!(read(r#"{"at":"18446744073709551615"}"#), Ok(Date(u64::MAX)));
        for bad in [
            r#"{"at":""}"#,
            r#"{"at":"-1"}"#,
            r#"{"at":"12a"}"#,
            r#"{"at":"18446744073709551616"}"#,
            r#"{"at":1764547200000}"#,
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
        let mut buf = [0u8; 32];
        let n = serde_json_core::to_slice(&Date(u64::MAX), &mut buf).unwrap();
        assert_eq!(&buf[..n], br#""18446744073709551615""#);
    }
}
