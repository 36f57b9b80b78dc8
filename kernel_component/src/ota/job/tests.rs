use super::*;

const MD5: &str = "93230c3bde425a9d7984a594ac55ea1e";
const SHA: &str = "1f2ca6f6b1fd8b69a7e5f8d7bd1c52a5d55d0e3b0e2bfd29cfd0c6b5b5cdd2a0";

/// The push of spec §3 (DOC-OTA's example), with `isDiff` 0.
fn push(fields: &str) -> alloc::vec::Vec<u8> {
    alloc::format!(
        r#"{{"code":"1000","data":{{{fields}}},"id":1626969597470,"message":"success"}}"#
    )
    .into_bytes()
}

const FULL: &str = r#""size":432945,"version":"2.0.0","isDiff":0,"url":"https://ota.example/fw.bin?Expires=1&Signature=x","md5":"93230c3bde425a9d7984a594ac55ea1e","digestsign":"abc","sign":"93230c3bde425a9d7984a594ac55ea1e","signMethod":"MD5","module":"default","extData":{"key1":"value1"}"#;

#[test]
fn the_documented_push_is_a_job() {
    let job = parse(&push(FULL), "default", 0x7A000).unwrap().unwrap();
    assert_eq!(job.version, "2.0.0");
    assert_eq!(job.size, 432_945);
    assert_eq!(job.url, "https://ota.example/fw.bin?Expires=1&Signature=x");
    let Digest::Md5(d) = job.digest else {
        panic!("md5")
    };
    assert_eq!(d[0], 0x93);
    assert_eq!(d[15], 0x1e);
    assert_eq!(job.module, "default");
}

#[test]
fn sign_methods_are_compared_without_case_and_need_the_right_length() {
    for method in ["MD5", "Md5", "md5"] {
        let fields = FULL.replace(
            r#""signMethod":"MD5""#,
            &alloc::format!(r#""signMethod":"{method}""#),
        );
        assert!(matches!(
            parse(&push(&fields), "default", u32::MAX)
                .unwrap()
                .unwrap()
                .digest,
            Digest::Md5(_)
        ));
    }
    for method in ["SHA256", "Sha256", "sha256"] {
        let fields = FULL
            .replace(
                r#""signMethod":"MD5""#,
                &alloc::format!(r#""signMethod":"{method}""#),
            )
            .replace(
                &alloc::format!(r#""sign":"{MD5}""#),
                &alloc::format!(r#""sign":"{SHA}""#),
            );
        let job = parse(&push(&fields), "default", u32::MAX).unwrap().unwrap();
        let Digest::Sha256(d) = job.digest else {
            panic!("sha256")
        };
        assert_eq!(d[0], 0x1f);
    }
    // A SHA-256 job whose sign has MD5's length, and the reverse.
    let short = FULL.replace(r#""signMethod":"MD5""#, r#""signMethod":"SHA256""#);
    assert_eq!(
        parse(&push(&short), "default", u32::MAX),
        Err(JobError::BadSign)
    );
    let long = FULL.replace(
        &alloc::format!(r#""sign":"{MD5}""#),
        &alloc::format!(r#""sign":"{SHA}""#),
    );
    assert_eq!(
        parse(&push(&long), "default", u32::MAX),
        Err(JobError::BadSign)
    );
    // LuatOS accepted a package with md5 "x".
    let x = FULL.replace(&alloc::format!(r#""sign":"{MD5}""#), r#""sign":"x""#);
    assert_eq!(
        parse(&push(&x), "default", u32::MAX),
        Err(JobError::BadSign)
    );
    let not_hex = FULL.replace(MD5, &"g".repeat(32));
    assert_eq!(
        parse(&push(&not_hex), "default", u32::MAX),
        Err(JobError::BadSign)
    );
    let other = FULL.replace(r#""signMethod":"MD5""#, r#""signMethod":"SM3""#);
    assert_eq!(
        parse(&push(&other), "default", u32::MAX),
        Err(JobError::UnknownSignMethod)
    );
}

#[test]
fn jobs_this_device_cannot_take_are_refused_with_a_reason() {
    assert_eq!(
        parse(&push(FULL), "default", 400_000),
        Err(JobError::TooLarge {
            size: 432_945,
            slot: 400_000
        })
    );
    assert_eq!(
        parse(&push(FULL), "MCU", u32::MAX),
        Err(JobError::OtherModule)
    );
    for missing in [r#""size":432945,"#, r#""version":"2.0.0","#] {
        let fields = FULL.replace(missing, "");
        assert_eq!(
            parse(&push(&fields), "default", u32::MAX),
            Err(JobError::Malformed)
        );
    }
    let no_url = FULL.replace(
        r#""url":"https://ota.example/fw.bin?Expires=1&Signature=x","#,
        "",
    );
    assert_eq!(
        parse(&push(&no_url), "default", u32::MAX),
        Err(JobError::Malformed)
    );
    assert_eq!(
        parse(b"not json", "default", u32::MAX),
        Err(JobError::Malformed)
    );
    assert_eq!(
        parse(br#"{"data":[1]}"#, "default", u32::MAX),
        Err(JobError::Malformed)
    );
    for e in [JobError::TooLarge { size: 5, slot: 4 }, JobError::BadSign] {
        assert_eq!(e.step(), -1);
        assert!(!e.desc().contains("https://"));
    }
}

#[test]
fn no_job_is_not_an_error_and_tolerant_forms_are_taken() {
    for empty in [
        &br#"{"id":"1","code":200,"data":{},"message":"success"}"#[..],
        br#"{"code":200}"#,
        br#"{"data":null}"#,
    ] {
        assert_eq!(parse(empty, "default", u32::MAX), Ok(None));
    }
    // firmware/get_reply: code a number, size a string, module and signMethod missing (MD5,
    // the default module), only `md5` given.
    let reply = br#"{"id":"7","code":200,"data":{"size":"1024","version":"1.1","url":"http://h/f","md5":"93230C3BDE425A9D7984A594AC55EA1E"},"message":"success"}"#;
    let job = parse(reply, "default", 4096).unwrap().unwrap();
    assert_eq!(job.size, 1024);
    assert_eq!(job.module, "default");
    assert!(matches!(job.digest, Digest::Md5(d) if d[0] == 0x93));
}

#[test]
fn a_differential_package_is_a_job_marked_diff() {
    let full = parse(&push(FULL), "default", u32::MAX).unwrap().unwrap();
    assert!(!full.diff);
    for flag in [r#""isDiff":1"#, r#""isDiff":"1""#, r#""isDiff":true"#] {
        let diff = FULL.replace(r#""isDiff":0"#, flag);
        let job = parse(&push(&diff), "default", u32::MAX).unwrap().unwrap();
        assert!(job.diff, "{flag}");
    }
}

/// The parser as it was with `serde_json` (before issue 11's size work), kept as the oracle
/// the flat reader must agree with on every valid JSON document.
mod serde_json_oracle {
    use super::super::{Digest, Job, JobError, hex};
    use alloc::string::{String, ToString};
    use serde_json::Value;

    fn data(payload: &[u8]) -> Result<Option<serde_json::Map<String, Value>>, JobError> {
        #[derive(serde::Deserialize)]
        struct Envelope {
            #[serde(default)]
            data: Option<Value>,
        }
        let envelope: Envelope =
            serde_json::from_slice(payload).map_err(|_| JobError::Malformed)?;
        match envelope.data {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) if map.is_empty() => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(_) => Err(JobError::Malformed),
        }
    }

    fn number(value: &Value) -> Option<u64> {
        match value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn parse(payload: &[u8], module: &str, slot: u32) -> Result<Option<Job>, JobError> {
        let Some(data) = data(payload)? else {
            return Ok(None);
        };
        let text = |key: &str| data.get(key).and_then(Value::as_str);
        let job_module = text("module")
            .filter(|m| !m.is_empty())
            .unwrap_or("default");
        if job_module != module {
            return Err(JobError::OtherModule);
        }
        let diff = match data.get("isDiff") {
            Some(Value::Bool(b)) => *b,
            Some(v) => number(v) == Some(1),
            None => false,
        };
        let size = data
            .get("size")
            .and_then(number)
            .ok_or(JobError::Malformed)?;
        if size > u64::from(slot) {
            return Err(JobError::TooLarge { size, slot });
        }
        let url = text("url")
            .filter(|u| !u.is_empty())
            .ok_or(JobError::Malformed)?;
        let version = text("version")
            .filter(|v| !v.is_empty())
            .ok_or(JobError::Malformed)?;
        let method = text("signMethod").unwrap_or("MD5");
        let sign = text("sign")
            .or_else(|| text("md5"))
            .ok_or(JobError::BadSign)?;
        let digest = if method.eq_ignore_ascii_case("md5") {
            Digest::Md5(hex(sign).ok_or(JobError::BadSign)?)
        } else if method.eq_ignore_ascii_case("sha256") {
            Digest::Sha256(hex(sign).ok_or(JobError::BadSign)?)
        } else {
            return Err(JobError::UnknownSignMethod);
        };
        Ok(Some(Job {
            version: version.to_string(),
            size: u32::try_from(size).map_err(|_| JobError::Malformed)?,
            url: url.to_string(),
            digest,
            module: job_module.to_string(),
            diff,
        }))
    }

    pub fn announced_module(payload: &[u8]) -> Option<String> {
        let module = data(payload).ok()??.get("module")?.as_str()?.to_string();
        (!module.is_empty()).then_some(module)
    }
}

/// Both parsers on `payload`, for each module and slot the fuzz target uses; they must agree
/// whenever `serde_json` reads `payload` as one JSON object (what the platform sends).
fn agrees(payload: &[u8]) -> bool {
    let valid = matches!(
        serde_json::from_slice::<serde_json::Value>(payload),
        Ok(serde_json::Value::Object(_))
    );
    if !valid {
        // Not JSON: no panic, and a job only from an object this reader accepts.
        let _ = announced_module(payload);
        let _ = parse(payload, "default", u32::MAX);
        return false;
    }
    for module in ["default", "mcu"] {
        for slot in [0x7A000, 0, 1024, u32::MAX] {
            assert_eq!(
                parse(payload, module, slot),
                serde_json_oracle::parse(payload, module, slot),
                "{}",
                alloc::string::String::from_utf8_lossy(payload)
            );
        }
    }
    assert_eq!(
        announced_module(payload),
        serde_json_oracle::announced_module(payload),
        "{}",
        alloc::string::String::from_utf8_lossy(payload)
    );
    true
}

#[test]
fn the_flat_reader_agrees_with_serde_json_on_every_value_of_every_member() {
    let values = [
        r#""""#,
        r#""mcu""#,
        r#""default""#,
        r#""1024""#,
        r#"" 1024 ""#,
        r#""+1024""#,
        r#""1""#,
        r#""0""#,
        r#""-1""#,
        r#""1\u0030""#,
        r#""https:\/\/ota.example\/fw.bin?a=1\u0026b=2""#,
        r#""2.0\n""#,
        r#""\u00e9\ud83d\ude00""#,
        r#""SHA256""#,
        r#""sha256""#,
        r#""md5""#,
        r#""SM3""#,
        r#""93230C3BDE425A9D7984A594AC55EA1E""#,
        r#""\u0039\u00333230c3bde425a9d7984a594ac55ea1e""#,
        r#""1f2ca6f6b1fd8b69a7e5f8d7bd1c52a5d55d0e3b0e2bfd29cfd0c6b5b5cdd2a0""#,
        "0",
        "1",
        "1024",
        "432945",
        "524288",
        "4294967295",
        "4294967296",
        "18446744073709551615",
        "18446744073709551616",
        "-0",
        "-1",
        "1.0",
        "1e3",
        "1E3",
        "-1.5e-3",
        "true",
        "false",
        "null",
        "{}",
        r#"{"a":"}"}"#,
        "[]",
        r#"[1,"]",{}]"#,
    ];
    let keys = [
        "module",
        "isDiff",
        "size",
        "url",
        "version",
        "signMethod",
        "sign",
        "md5",
        "extData",
    ];
    let mut checked = 0;
    for key in keys {
        for value in values {
            let member = alloc::format!(r#""{key}":{value}"#);
            // The member replaced, then added again after the others (the last counts).
            let replaced: alloc::vec::Vec<&str> = FULL
                .split(',')
                .filter(|m| !m.starts_with(&alloc::format!(r#""{key}":"#)))
                .collect();
            let mut fields = replaced.join(",");
            fields.push(',');
            fields.push_str(&member);
            checked += usize::from(agrees(&push(&fields)));
            let twice = alloc::format!("{FULL},{member}");
            checked += usize::from(agrees(&push(&twice)));
            let alone = alloc::format!(r#"{{"data":{{{member}}}}}"#);
            checked += usize::from(agrees(alone.as_bytes()));
        }
    }
    for data in ["null", "{}", "[]", r#""x""#, "1", "true", r#"{"x":1}"#] {
        checked += usize::from(agrees(alloc::format!(r#"{{"data":{data}}}"#).as_bytes()));
    }
    for whole in [
        &b""[..],
        b"{}",
        b" { } ",
        b"null",
        b"[]",
        b"\"data\"",
        b"{\"data\":{}}x",
    ] {
        agrees(whole);
    }
    assert!(checked > 3 * keys.len() * values.len());
}

#[test]
fn the_flat_reader_agrees_with_serde_json_on_mangled_pushes() {
    // Every byte of the documented push (with a SHA-256 sign and a string size) dropped,
    // doubled or replaced by a JSON delimiter; where the result is still JSON, both agree.
    let base = push(
        &FULL
            .replace(r#""size":432945"#, r#""size":"432945""#)
            .replace(r#""signMethod":"MD5""#, r#""signMethod":"Sha256""#)
            .replace(
                &alloc::format!(r#""sign":"{MD5}""#),
                &alloc::format!(r#""sign":"{SHA}""#),
            ),
    );
    agrees(&base);
    let mut valid = 0;
    for at in 0..base.len() {
        let mut dropped = base.clone();
        dropped.remove(at);
        valid += usize::from(agrees(&dropped));
        let mut doubled = base.clone();
        doubled.insert(at, base[at]);
        valid += usize::from(agrees(&doubled));
        for b in [
            b' ', b'"', b',', b':', b'{', b'}', b'[', b']', b'\\', b'0', b'x',
        ] {
            let mut replaced = base.clone();
            replaced[at] = b;
            valid += usize::from(agrees(&replaced));
        }
    }
    assert!(valid > 100, "{valid}");
}
