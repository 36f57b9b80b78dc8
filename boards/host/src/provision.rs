//! `aliot-provision`: what goes onto an nRF9160 DK before its first boot, besides the firmware.
//!
//! Secrets never go into the committed manifest or the firmware image. Two things are made
//! on the host from the manifest the firmware was built with (compiled in, like the host
//! board's) and from secrets given on the command line or in the environment:
//!
//! * `credentials.hex`: the provisioned half of the manifest's credentials partition
//!   (`aliot_kernel::store::provisioned_and_registered`, as the nRF9160 DK board reads it)
//!   holding the secret the manifest's auth mode needs (the DeviceSecret, or the ProductSecret
//!   for 一型一密), as the kernel's factory record, the format the board reads at boot
//!   (`aliot_kernel::store::factory_record`, read back here through the kernel's
//!   `read_factory` from a flash image with the nRF9160's 4 KiB pages and compared). Flashed
//!   like any image (`probe-rs download`); the registered half is left alone (a
//!   registration's result stays).
//! * `modem-ca.at`: the `AT%CMNG` command that writes the server's root CA into the modem's
//!   security tag (the nRF9160 does TLS in the modem; its firmware verifies the platform with
//!   the certificates in that tag). It is sent with the modem offline, by Nordic's
//!   `at_client` sample or `nrfcredstore`; this firmware has no AT shell.
//!
//! UNTESTED ON HARDWARE: the files are checked on the host (the partition reads back through
//! the kernel's factory reader; the AT command is checked against Nordic's documented syntax), but no
//! board has been flashed with them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aliot_kernel::config::{AuthMode, DeviceConfig, FlashPartition};
use aliot_kernel::credentials::Secret;
use aliot_kernel::registration::{Issued, StoredCredentials};
use aliot_kernel::store::provisioned_and_registered;
use aliot_kernel::store::{MAX_SECRET, factory_record, read_factory};
use clap::Parser;

use crate::flash::{FileFlash, PAGE_SIZE};
use crate::secret::SecretKind;

/// The modem's limit on one `AT%CMNG` content (nRF91 AT Commands reference: 4 KiB per
/// credential).
pub const MAX_CERT_BYTES: usize = 4096;

/// Command line of `aliot-provision`.
#[derive(Parser, Debug)]
#[command(
    version,
    about = "Make the nRF9160 DK's provisioning files: the credentials partition (DeviceSecret or ProductSecret) and the modem's CA command"
)]
struct ProvisionArgs {
    /// Where to write credentials.hex and modem-ca.at.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The secret the manifest's auth mode needs (DeviceSecret, or ProductSecret for
    /// 一型一密), from this file (else from where the manifest says: an env variable).
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// The server's root CA (PEM) for the modem's security tag (Alibaba's public endpoints:
    /// GlobalSign Root CA R1). Without it no modem-ca.at is written.
    #[arg(long, value_name = "PEM")]
    ca: Option<PathBuf>,
    /// The modem security tag the firmware's TLS uses.
    #[arg(long, value_name = "TAG")]
    sec_tag: Option<u32>,
}

/// The `aliot-provision` binary's entry point, with the manifest compiled in.
pub fn main() -> ExitCode {
    crate::init_logging(None);
    let args = ProvisionArgs::parse();
    match run(&crate::generated::DEVICE, &args) {
        Ok(lines) => {
            print!("{lines}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("aliot-provision: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: &DeviceConfig, args: &ProvisionArgs) -> Result<String, String> {
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let scratch = tempfile_dir(&args.out)?;
    let kind = match config.auth {
        AuthMode::DeviceSecret => SecretKind::Device,
        AuthMode::ProductSecretRegister | AuthMode::ProductSecretNoPreRegister => {
            SecretKind::Product
        }
    };
    let secret =
        crate::secret::load_kind(config.secret, args.secret_file.as_deref(), &scratch, kind);
    let partition = secret.and_then(|s| credentials_partition_image(config, s, &scratch));
    let _ = std::fs::remove_dir_all(&scratch);
    let partition = partition?;
    let p = provisioned_half(config)?;
    let hex = aliot_image::intel_hex(&[(p.offset, &partition)], None);
    let hex_path = args.out.join("credentials.hex");
    std::fs::write(&hex_path, hex)
        .map_err(|e| format!("cannot write {}: {e}", hex_path.display()))?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "wrote {}: the provisioned half {:#07x}..{:#07x} of the credentials partition with the {} of {}/{} (read back through the kernel's store)",
        hex_path.display(),
        p.offset,
        p.offset + p.size,
        match kind {
            SecretKind::Device => "DeviceSecret",
            SecretKind::Product => "ProductSecret",
        },
        config.product_key,
        config.device_name
    );
    let _ = writeln!(
        out,
        "  flash it: probe-rs download --chip nRF9160_xxAA --binary-format hex {}   (UNTESTED ON HARDWARE)",
        hex_path.display()
    );
    let _ = writeln!(
        out,
        "  it holds the secret in clear: keep it out of version control and delete it after flashing"
    );
    match (&args.ca, args.sec_tag) {
        (Some(ca), Some(tag)) => {
            let pem = std::fs::read_to_string(ca)
                .map_err(|e| format!("cannot read the CA file {}: {e}", ca.display()))?;
            let command = cmng_write_ca(tag, &pem)?;
            let at_path = args.out.join("modem-ca.at");
            std::fs::write(&at_path, command)
                .map_err(|e| format!("cannot write {}: {e}", at_path.display()))?;
            let _ = writeln!(
                out,
                "wrote {}: AT%CMNG writing {} into security tag {tag}; send it with the modem offline (AT+CFUN=4), e.g. from Nordic's at_client sample   (UNTESTED ON HARDWARE)",
                at_path.display(),
                ca.display()
            );
        }
        (None, _) => {
            let _ = writeln!(out, "no --ca given: no modem-ca.at written");
        }
        (Some(_), None) => {
            return Err("--ca needs --sec-tag (the firmware's TLS security tag)".into());
        }
    }
    Ok(out)
}

/// A scratch directory inside `out` (removed after use).
fn tempfile_dir(out: &Path) -> Result<PathBuf, String> {
    let dir = out.join(".provision-scratch");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// The provisioned half of the manifest's credentials partition.
fn provisioned_half(config: &DeviceConfig) -> Result<FlashPartition, String> {
    let p = config.credentials_partition;
    provisioned_and_registered(p).map(|(low, _)| low).ok_or_else(|| {
        format!(
            "[flash.credentials] has {} bytes: at least 4 erase pages of {} are needed (2 provisioned, 2 for a registration's result)",
            p.size, p.erase_page
        )
    })
}

/// The provisioned half's bytes holding `secret` for the manifest's device: the kernel's
/// factory record (`aliot_kernel::store::factory_record`) at its start, the rest erased; read
/// back through the kernel's reader from a flash image of the device's geometry (in `scratch`)
/// before it is returned.
pub fn credentials_partition_image(
    config: &DeviceConfig,
    secret: Secret,
    scratch: &Path,
) -> Result<Vec<u8>, String> {
    if secret.expose().len() > MAX_SECRET {
        return Err(format!(
            "the DeviceSecret is {} bytes; the credential record holds at most {MAX_SECRET}",
            secret.expose().len()
        ));
    }
    let p = provisioned_half(config)?;
    let expected = secret.expose().to_vec();
    let creds = StoredCredentials {
        product_key: config.product_key.into(),
        device_name: config.device_name.into(),
        issued: Issued::DeviceSecret(secret),
    };
    let record = factory_record(&creds).map_err(|e| e.to_string())?;
    let mut image = vec![0xFF; p.size as usize];
    image
        .get_mut(..record.len())
        .ok_or("the factory record is larger than the provisioned half")?
        .copy_from_slice(&record);
    // Read it back the way the firmware will: the half at its address in the whole flash.
    let end = (p.offset + p.size) as usize;
    let pages = end.div_ceil(PAGE_SIZE);
    let path = scratch.join("flash.bin");
    let mut whole = vec![0xFF; pages * PAGE_SIZE];
    whole[p.offset as usize..end].copy_from_slice(&image);
    std::fs::write(&path, &whole).map_err(|e| format!("cannot make a flash image: {e}"))?;
    let read_back = FileFlash::open(&path, pages)
        .map_err(|e| format!("cannot open the flash image: {e}"))
        .and_then(|mut flash| {
            read_factory(&mut flash, p, config.product_key, config.device_name)
                .map_err(|e| e.to_string())
        });
    let _ = std::fs::remove_file(&path);
    match read_back?.map(|c| c.issued) {
        Some(Issued::DeviceSecret(s)) if s.expose() == expected.as_slice() => Ok(image),
        _ => Err("the credentials partition did not read back as written".into()),
    }
}

/// `AT%CMNG=0,<tag>,0,"<PEM>"`: write a root CA certificate (type 0) into security tag `tag`
/// (nRF91 AT Commands reference, "Credential storage management %CMNG"). The PEM must hold
/// exactly one certificate; it may not contain `"` (the command's delimiter) and must fit the
/// modem's limit.
pub fn cmng_write_ca(tag: u32, pem: &str) -> Result<String, String> {
    let pem = pem.trim();
    let begins = pem.matches("-----BEGIN CERTIFICATE-----").count();
    if begins != 1 || !pem.ends_with("-----END CERTIFICATE-----") {
        return Err(format!(
            "the CA file must hold exactly one PEM certificate (found {begins} BEGIN CERTIFICATE lines)"
        ));
    }
    if pem.contains('"') {
        return Err("the CA file contains '\"', which AT%CMNG cannot carry".into());
    }
    if pem.len() > MAX_CERT_BYTES {
        return Err(format!(
            "the certificate is {} bytes; the modem takes at most {MAX_CERT_BYTES}",
            pem.len()
        ));
    }
    Ok(format!("AT%CMNG=0,{tag},0,\"{pem}\"\r\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    #[test]
    fn the_cmng_command_is_nordics_syntax() {
        assert_eq!(
            cmng_write_ca(42, PEM).unwrap(),
            "AT%CMNG=0,42,0,\"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\"\r\n"
        );
    }

    #[test]
    fn bad_ca_files_are_refused_with_the_reason() {
        let two = format!("{PEM}{PEM}");
        assert!(cmng_write_ca(1, &two).unwrap_err().contains("found 2"));
        assert!(cmng_write_ca(1, "hello").unwrap_err().contains("found 0"));
        let quoted = PEM.replace("MIIB", "MI\"IB");
        assert!(cmng_write_ca(1, &quoted).unwrap_err().contains("'\"'"));
        let big = PEM.replace("MIIB", &"A".repeat(MAX_CERT_BYTES));
        assert!(cmng_write_ca(1, &big).unwrap_err().contains("at most 4096"));
    }

    #[test]
    fn the_partition_holds_the_secret_in_the_kernels_factory_record_and_nothing_else() {
        let config = &crate::generated::DEVICE;
        let dir = tempfile::tempdir().unwrap();
        let secret = b"0123456789abcdef0123456789abcdef".to_vec();
        let image =
            credentials_partition_image(config, Secret::new(secret.clone()), dir.path()).unwrap();
        let p = provisioned_half(config).unwrap();
        assert_eq!(image.len(), p.size as usize);
        assert_eq!(p.offset, config.credentials_partition.offset);
        assert!(p.size < config.credentials_partition.size);
        // The secret is on flash (the record), once.
        let found = image
            .windows(secret.len())
            .filter(|w| *w == secret.as_slice())
            .count();
        assert_eq!(found, 1);
        // Read it back the way the firmware will: the partition alone, at its address, in a
        // fresh flash image.
        let pages = (p.offset + p.size) as usize / PAGE_SIZE;
        let path = dir.path().join("device.bin");
        let mut whole = vec![0xFF; pages * PAGE_SIZE];
        whole[p.offset as usize..].copy_from_slice(&image);
        std::fs::write(&path, &whole).unwrap();
        let mut flash = FileFlash::open(&path, pages).unwrap();
        let loaded = read_factory(&mut flash, p, config.product_key, config.device_name)
            .unwrap()
            .unwrap();
        match loaded.issued {
            Issued::DeviceSecret(s) => assert_eq!(s.expose(), secret.as_slice()),
            Issued::Token { .. } => panic!("a token came back"),
        }
    }

    #[test]
    fn an_over_long_secret_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let e = credentials_partition_image(
            &crate::generated::DEVICE,
            Secret::new(vec![b'x'; MAX_SECRET + 1]),
            dir.path(),
        )
        .unwrap_err();
        assert!(e.contains("at most 128"), "{e}");
        assert!(!dir.path().join("flash.bin").exists());
    }
}
