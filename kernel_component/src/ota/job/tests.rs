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
