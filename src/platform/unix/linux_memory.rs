//! Linux: a long-running process handing back the pages of its own code.
//!
//! The kernel maps a program's code as it runs, 64 KiB around each page touched, and
//! keeps every page mapped for the life of the process. For the agent most of that is
//! code it ran once: argument parsing, reading the config, opening the keychain, a
//! refresh an hour ago. [`release_code_pages`] unmaps the read-only mappings of the
//! program's own file with `MADV_DONTNEED`. The pages stay in the page cache, where the
//! kernel can drop them first under pressure; the code the process runs next is mapped
//! again from there, a minor fault per 64 KiB, no disk read while the cache holds it.
//!
//! Only mappings that hold nothing but the file's own bytes are released: read-only,
//! private, of this program's file, with no page written since mapping (`Anonymous: 0`).
//! A read-only mapping with written pages (RELRO, after relocation) is left alone:
//! `MADV_DONTNEED` would bring back the file's unrelocated bytes.

use std::os::unix::fs::MetadataExt as _;

/// Unmaps the pages of this program's own code and read-only data; returns how many
/// bytes were resident in them.
pub fn release_code_pages() -> std::io::Result<u64> {
    let exe = std::fs::metadata("/proc/self/exe")?;
    let file = FileId {
        major: libc::major(exe.dev()) as u64,
        minor: libc::minor(exe.dev()) as u64,
        inode: exe.ino(),
    };
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let mut released = 0;
    for mapping in releasable(&smaps, file) {
        // SAFETY: the range is a whole mapping of the program's file, read-only and
        // private, none of whose pages was written (`releasable`): dropping its pages
        // loses nothing, the next access maps the same bytes from the page cache.
        let rc = unsafe {
            libc::madvise(
                mapping.start as *mut libc::c_void,
                mapping.len as libc::size_t,
                libc::MADV_DONTNEED,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        released += mapping.resident;
    }
    Ok(released)
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct FileId {
    major: u64,
    minor: u64,
    inode: u64,
}

#[derive(Debug, PartialEq)]
struct Mapping {
    start: usize,
    len: usize,
    /// Bytes resident when smaps was read.
    resident: u64,
}

/// The mappings of `file` in `smaps` (the text of /proc/PID/smaps) that hold only the
/// file's bytes: not writable, private, with no anonymous (written) page.
fn releasable(smaps: &str, file: FileId) -> Vec<Mapping> {
    let kib = |rest: &str| -> Option<u64> { rest.trim().strip_suffix("kB")?.trim().parse().ok() };
    let mut out = Vec::new();
    // The mapping being read, if it is a candidate, with its Rss once seen.
    let mut current: Option<(Mapping, bool)> = None;
    let mut finish = |current: &mut Option<(Mapping, bool)>| {
        if let Some((mapping, clean)) = current.take()
            && clean
        {
            out.push(mapping);
        }
    };
    for line in smaps.lines() {
        if let Some(header) = header(line) {
            finish(&mut current);
            current = header
                .filter(|(_, perms, id)| *id == file && perms.as_bytes().get(1) == Some(&b'-'))
                .filter(|(_, perms, _)| perms.as_bytes().get(3) == Some(&b'p'))
                .map(|((start, end), _, _)| {
                    let len = end - start;
                    (
                        Mapping {
                            start,
                            len,
                            resident: 0,
                        },
                        // Clean until its `Anonymous` line says otherwise; a mapping
                        // whose line is missing is not released.
                        false,
                    )
                });
            continue;
        }
        let Some((mapping, clean)) = current.as_mut() else {
            continue;
        };
        if let Some(rest) = line.strip_prefix("Rss:") {
            mapping.resident = kib(rest).unwrap_or(0) * 1024;
        } else if let Some(rest) = line.strip_prefix("Anonymous:") {
            *clean = kib(rest) == Some(0);
        }
    }
    finish(&mut current);
    out
}

/// A mapping's address range, permissions and file.
type Header<'a> = ((usize, usize), &'a str, FileId);

/// A mapping's first line: `Some(Some(..))` for a file's mapping, `Some(None)` for a
/// mapping of no file (or one whose line does not parse); `None` for a field line.
fn header(line: &str) -> Option<Option<Header<'_>>> {
    let mut fields = line.split_ascii_whitespace();
    let range = fields.next()?;
    let (start, end) = range.split_once('-')?;
    // Field lines start with a name and a colon, never with a hex range.
    let start = usize::from_str_radix(start, 16).ok()?;
    let Ok(end) = usize::from_str_radix(end, 16) else {
        return Some(None);
    };
    let parsed = (|| {
        let perms = fields.next()?;
        let _offset = fields.next()?;
        let (major, minor) = fields.next()?.split_once(':')?;
        let inode = fields.next()?.parse().ok()?;
        let id = FileId {
            major: u64::from_str_radix(major, 16).ok()?,
            minor: u64::from_str_radix(minor, 16).ok()?,
            inode,
        };
        (id.inode != 0 && end > start).then_some(((start, end), perms, id))
    })();
    Some(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LANYARD: FileId = FileId {
        major: 0xfe,
        minor: 1,
        inode: 1234,
    };

    fn mapping(header: &str, rss: u64, anonymous: u64) -> String {
        format!(
            "{header}\nSize:               4 kB\nRss:             {rss} kB\nPss:             {rss} kB\n\
             Anonymous:       {anonymous} kB\nVmFlags: rd ex mr mw me\n"
        )
    }

    #[test]
    fn only_the_programs_own_unwritten_read_only_mappings_are_released() {
        let smaps = [
            // The program's rodata and code: released.
            mapping(
                "00200000-003a7000 r--p 00000000 fe:01 1234    /usr/bin/lanyard",
                852,
                0,
            ),
            mapping(
                "003a7000-00892000 r-xp 001a7000 fe:01 1234    /usr/bin/lanyard",
                4652,
                0,
            ),
            // RELRO, written by relocation before it was made read-only: kept.
            mapping(
                "00892000-00897000 r--p 00692000 fe:01 1234    /usr/bin/lanyard",
                20,
                20,
            ),
            // Its data: writable, kept.
            mapping(
                "00897000-0089c000 rw-p 00697000 fe:01 1234    /usr/bin/lanyard",
                20,
                8,
            ),
            // Another file's code, the same inode number on another device, a shared
            // mapping of the program: kept.
            mapping(
                "7f0000000000-7f0000100000 r-xp 00000000 fe:01 99    /usr/lib/libc.so.6",
                400,
                0,
            ),
            mapping(
                "7f0000100000-7f0000200000 r-xp 00000000 fe:02 1234    /other/lanyard",
                400,
                0,
            ),
            mapping(
                "7f0000200000-7f0000300000 r--s 00000000 fe:01 1234    /usr/bin/lanyard",
                400,
                0,
            ),
            // Memory of no file: kept.
            mapping(
                "01000000-01100000 rw-p 00000000 00:00 0    [heap]",
                500,
                500,
            ),
            mapping(
                "7ffc00000000-7ffc00001000 r-xp 00000000 00:00 0    [vdso]",
                4,
                0,
            ),
        ]
        .concat();
        assert_eq!(
            releasable(&smaps, LANYARD),
            vec![
                Mapping {
                    start: 0x200000,
                    len: 0x1a7000,
                    resident: 852 * 1024
                },
                Mapping {
                    start: 0x3a7000,
                    len: 0x4eb000,
                    resident: 4652 * 1024
                },
            ]
        );
    }

    #[test]
    fn a_mapping_whose_anonymous_line_is_missing_or_garbled_is_kept() {
        let smaps = "00200000-003a7000 r--p 00000000 fe:01 1234 /usr/bin/lanyard\nRss: 8 kB\n\
                     003a7000-00892000 r-xp 001a7000 fe:01 1234 /usr/bin/lanyard\nRss: 8 kB\nAnonymous: lots\n\
                     garbage-line\n";
        assert!(releasable(smaps, LANYARD).is_empty());
    }

    /// This test binary's own code: after the release most of it is no longer resident,
    /// and the code still runs (it is mapped again as it is used).
    #[test]
    fn the_release_unmaps_the_running_programs_code_and_it_still_runs() {
        let resident = || {
            let exe = std::fs::metadata("/proc/self/exe").unwrap();
            let file = FileId {
                major: libc::major(exe.dev()) as u64,
                minor: libc::minor(exe.dev()) as u64,
                inode: exe.ino(),
            };
            let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
            releasable(&smaps, file)
                .iter()
                .map(|m| m.resident)
                .sum::<u64>()
        };
        let before = resident();
        assert!(before > 1 << 20, "only {before} bytes of code resident");
        let released = release_code_pages().unwrap();
        assert!(released >= before / 2, "{released} of {before}");
        let after = resident();
        // Other tests run meanwhile and map some back; nowhere near all of it.
        assert!(
            after < before / 2,
            "{after} bytes resident after, {before} before"
        );
        assert_eq!(format!("{}", 6 * 7), "42");
    }
}
