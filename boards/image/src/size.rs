//! Where an image's bytes come from: each symbol of the ELF's symbol table attributed to a
//! crate (from its mangled name) or to a C library (from the archives it was linked from),
//! then summed per group, for flash (code and constants) and RAM (`.data`, `.bss`).
//!
//! Attribution is by definition site: a generic instantiated by our code is counted in the
//! crate that defines it (`rust_mqtt::client::Client<..>::connect` is `rust_mqtt`, even when
//! the kernel made it). Bytes no symbol covers (padding, the linker's anonymous constants)
//! are reported as unattributed, never dropped: the groups always add up to the segments.

use std::collections::{BTreeMap, BTreeSet};

use object::read::archive::ArchiveFile;
use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};

/// Where a byte of the image is: loaded into flash, or occupying RAM at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Memory {
    /// Code, constants, `.data`'s initial values.
    Flash,
    /// `.data` and `.bss`.
    Ram,
}

/// Bytes per origin: `(memory, origin) -> bytes`, origin a crate name or a C library's label.
pub type Origins = BTreeMap<(Memory, String), u64>;

/// The crate a Rust symbol comes from, from its legacy mangled name (`_ZN<len><ident>...`):
/// the first path component, or for `<Type as Trait>` impls the type's crate. `None` for
/// names that are not legacy-mangled Rust (C symbols, `#[no_mangle]` Rust).
pub fn crate_of(symbol: &str) -> Option<String> {
    if let Some(v0) = symbol.strip_prefix("_R") {
        return v0_crate(v0);
    }
    let rest = symbol.strip_prefix("_ZN")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let len: usize = rest.get(..digits)?.parse().ok()?;
    let ident = rest.get(digits..digits + len)?;
    // `_$LT$aliot_kernel..x..Y$u20$as$u20$..$GT$`: the first path inside the `<`; when that is
    // no crate path (`<&T as core::fmt::Display>`, `<[T] as ..>`), the trait's crate.
    let inner = ident.trim_start_matches('_');
    if let Some(inner) = inner.strip_prefix("$LT$") {
        if let Some(name) = leading_crate(inner) {
            return Some(name);
        }
        let (_, after) = inner.split_once("$u20$as$u20$")?;
        return leading_crate(after);
    }
    leading_crate(inner)
}

/// The first crate root of a v0-mangled name (`_RNvNtCs<hash>_17compiler_builtins3mem..`,
/// as the precompiled `core` and `compiler_builtins` are named): `C`, an optional
/// disambiguator `s<base62>_`, then `<len><name>`.
fn v0_crate(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    for (i, _) in text.match_indices('C') {
        let mut at = i + 1;
        if bytes.get(at) == Some(&b's') {
            let end = text.get(at..)?.find('_')?;
            at += end + 1;
        }
        let digits = bytes
            .get(at..)?
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let Ok(len) = text.get(at..at + digits)?.parse::<usize>() else {
            continue;
        };
        if let Some(name) = text
            .get(at + digits..at + digits + len)
            .and_then(leading_crate)
        {
            return Some(name);
        }
    }
    None
}

/// A crate name followed by a path separator (`..` in mangled impl names, or nothing more
/// in a plain path component): lowercase letters, digits and `_`, not starting with a digit.
fn leading_crate(text: &str) -> Option<String> {
    let name: String = text
        .chars()
        .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
        .collect();
    let rest = &text[name.len()..];
    let is_path = rest.is_empty() || rest.starts_with("..");
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) || !is_path {
        return None;
    }
    Some(name)
}

/// The symbols an archive's members define and those they need from outside.
#[derive(Debug, Default, Clone)]
pub struct ArchiveSymbols {
    /// Defined by some member.
    pub defined: BTreeSet<String>,
    /// Used by some member and defined by none.
    pub undefined: BTreeSet<String>,
}

/// Reads the symbols of every object in the archive `bytes`.
pub fn archive_symbols(bytes: &[u8]) -> Result<ArchiveSymbols, String> {
    let archive = ArchiveFile::parse(bytes).map_err(|e| format!("not an archive ({e})"))?;
    let mut out = ArchiveSymbols::default();
    let mut used = BTreeSet::new();
    for member in archive.members() {
        let member = member.map_err(|e| format!("unreadable member ({e})"))?;
        let data = member
            .data(bytes)
            .map_err(|e| format!("unreadable member data ({e})"))?;
        let Ok(file) = object::File::parse(data) else {
            continue; // not an object (a symbol index)
        };
        for sym in file.symbols() {
            let Ok(name) = sym.name() else { continue };
            if sym.is_undefined() {
                used.insert(name.to_owned());
            } else if !name.is_empty() && !name.starts_with(".L") && !name.starts_with('$') {
                // Local (static) functions too: the image keeps their names.
                out.defined.insert(name.to_owned());
            }
        }
    }
    out.undefined = used.difference(&out.defined).cloned().collect();
    Ok(out)
}

/// A C library linked into the image: its label and its symbols.
pub struct CLibrary<'a> {
    /// How the report names it.
    pub label: &'a str,
    /// Its symbols.
    pub symbols: &'a ArchiveSymbols,
}

/// Attributes every sized symbol of the ELF `bytes` that lies in an allocated section: a C
/// library's symbol to its label, a symbol a C library needs from outside (its libc, except
/// the `mem*` functions everyone uses) to that library too, Rust symbols to their crate, the
/// rest to `unattributed`. Bytes of allocated sections no symbol covers are `unattributed`.
pub fn attribute(bytes: &[u8], libraries: &[CLibrary<'_>]) -> Result<Origins, String> {
    let file = object::File::parse(bytes).map_err(|e| format!("not an object file ({e})"))?;
    let mut origins = Origins::new();
    let mut covered: BTreeMap<Memory, u64> = BTreeMap::new();
    let mut totals: BTreeMap<Memory, u64> = BTreeMap::new();
    for section in file.sections() {
        let Some(memory) = memory_of(section.kind()) else {
            continue;
        };
        *totals.entry(memory).or_default() += section.size();
        if memory == Memory::Ram && section.kind() == SectionKind::Data {
            // .data's initial values are loaded into flash too.
            *totals.entry(Memory::Flash).or_default() += section.size();
        }
    }
    let mut seen = BTreeSet::new();
    for sym in file.symbols() {
        if sym.size() == 0 || !matches!(sym.kind(), SymbolKind::Text | SymbolKind::Data) {
            continue;
        }
        let Some(index) = sym.section_index() else {
            continue;
        };
        let Ok(section) = file.section_by_index(index) else {
            continue;
        };
        let Some(memory) = memory_of(section.kind()) else {
            continue;
        };
        // Aliases (the same bytes under two names) count once.
        if !seen.insert((sym.address(), sym.size())) {
            continue;
        }
        let name = sym.name().unwrap_or("");
        let origin = origin_of(name, libraries);
        let mut add = |memory: Memory| {
            *origins.entry((memory, origin.clone())).or_default() += sym.size();
            *covered.entry(memory).or_default() += sym.size();
        };
        add(memory);
        if memory == Memory::Ram && section.kind() == SectionKind::Data {
            add(Memory::Flash);
        }
    }
    for (memory, total) in totals {
        let covered = covered.get(&memory).copied().unwrap_or(0);
        if total > covered {
            *origins
                .entry((memory, "unattributed".to_owned()))
                .or_default() += total - covered;
        }
    }
    Ok(origins)
}

fn memory_of(kind: SectionKind) -> Option<Memory> {
    match kind {
        SectionKind::Text | SectionKind::ReadOnlyData | SectionKind::ReadOnlyString => {
            Some(Memory::Flash)
        }
        SectionKind::Data | SectionKind::UninitializedData => Some(Memory::Ram),
        _ => None,
    }
}

fn origin_of(name: &str, libraries: &[CLibrary<'_>]) -> String {
    if let Some(lib) = libraries.iter().find(|l| l.symbols.defined.contains(name)) {
        return lib.label.to_owned();
    }
    if let Some(krate) = crate_of(name) {
        return krate;
    }
    let shared = name.starts_with("mem") || name.starts_with("__aeabi");
    if !shared
        && let Some(lib) = libraries
            .iter()
            .find(|l| l.symbols.undefined.contains(name))
    {
        return lib.label.to_owned();
    }
    "unattributed".to_owned()
}

#[cfg(test)]
mod tests {
    use super::crate_of;

    #[test]
    fn crates_come_from_the_first_path_component() {
        assert_eq!(
            crate_of("_ZN12aliot_kernel6runner3fooE").as_deref(),
            Some("aliot_kernel")
        );
        assert_eq!(
            crate_of("_ZN4core3fmt5write17h0123456789abcdefE").as_deref(),
            Some("core")
        );
    }

    #[test]
    fn trait_impls_count_for_the_type_crate() {
        assert_eq!(
            crate_of("_ZN104_$LT$aliot_nrf9160dk..credentials..BoardCredentials$u20$as$u20$aliot_kernel..credentials..Credentials$GT$10registered17h0E").as_deref(),
            Some("aliot_nrf9160dk")
        );
        assert_eq!(
            crate_of("_ZN44_$LT$$RF$T$u20$as$u20$core..fmt..Display$GT$3fmt17h0E").as_deref(),
            Some("core")
        );
    }

    #[test]
    fn v0_names_give_their_crate_root() {
        assert_eq!(
            crate_of("_RNvNtCsjExpU34NpHf_17compiler_builtins3mem7memmove").as_deref(),
            Some("compiler_builtins")
        );
        assert_eq!(
            crate_of("_RNvMNtNtCs9NFmPrRkAdj_4core4char7methodsc16escape_debug_ext").as_deref(),
            Some("core")
        );
    }

    #[test]
    fn c_and_unmangled_names_have_no_crate() {
        assert_eq!(crate_of("nrf_modem_init"), None);
        assert_eq!(crate_of("memcpy"), None);
        assert_eq!(crate_of("_ZN"), None);
        assert_eq!(crate_of("_ZN99short"), None);
    }
}
