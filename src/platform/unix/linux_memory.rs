//! Linux: a long-running process handing back memory it used once.
//!
//! The kernel maps a program's code (and its libraries') as it runs, 64 KiB around each
//! page touched, and keeps every page mapped for the life of the process. For the agent
//! most of that is code it ran once: argument parsing, reading the config, opening the
//! keychain, a refresh an hour ago; for the desktop app, the code of a window it has
//! closed. [`release_memory`] unmaps the read-only file mappings with `MADV_DONTNEED`.
//! The pages stay in the page cache, where the kernel can drop them first under pressure;
//! the code the process runs next is mapped again from there, a minor fault per 64 KiB,
//! no disk read while the cache holds it. It also hands the allocator's free memory back
//! to the system (`malloc_trim`, with glibc).
//!
//! Only mappings that hold nothing but their file's bytes are released: read-only,
//! private, of a file, with no page written since mapping (`Anonymous: 0`), and none of
//! a device's or locked. A read-only mapping with written pages (RELRO, after
//! relocation) is left alone: `MADV_DONTNEED` would bring back the file's unrelocated
//! bytes.
//!
//! The desktop app's webview is here too: its helper process ended once the last window
//! is gone ([`end_webview_helpers`]), and its compositing left off where there is no GPU
//! ([`webview_environment`]).

/// WebKitGTK's switch for accelerated compositing, read as its first webview is made.
const NO_COMPOSITING: &str = "WEBKIT_DISABLE_COMPOSITING_MODE";

/// The environment the desktop app's webview should start with. With no GPU to render
/// on (no render node in /dev/dri: a VM, Xvfb, many kiosk seats), WebKitGTK's accelerated
/// compositing draws every layer through software GL and copies it across: with it off,
/// the page paints in software directly, its first frame sooner and its web process
/// some 80 MB smaller (docs/benchmarks.md). Left alone when the user set the variable.
pub fn webview_environment() -> Vec<(&'static str, &'static str)> {
    compositing_environment(
        has_render_node(std::path::Path::new("/dev/dri")),
        std::env::var_os(NO_COMPOSITING).is_some(),
    )
}

fn compositing_environment(gpu: bool, user_chose: bool) -> Vec<(&'static str, &'static str)> {
    if gpu || user_chose {
        Vec::new()
    } else {
        vec![(NO_COMPOSITING, "1")]
    }
}

/// Whether `dir` (/dev/dri) holds a GPU's render node (`renderD128`, …).
fn has_render_node(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
    })
}

/// The helper process WebKitGTK keeps for its webviews' network, which lives on after the
/// last webview is gone (its web processes end with their views).
const WEBVIEW_HELPER: &str = "WebKitNetworkProcess";

/// Ends the webview helpers among this process's children and grandchildren (WebKit may
/// start them under a sandbox); returns how many. For an app with no webview left:
/// WebKit starts a new one with the next webview.
pub fn end_webview_helpers() -> usize {
    use super::linux::{Pidfd, exe, parent};
    let me = std::process::id() as i32;
    let ours = |pid: i32| parent(pid).is_some_and(|p| p == me || (p > 1 && parent(p) == Some(me)));
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut ended = 0;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me || !ours(pid) {
            continue;
        }
        let Some(pin) = Pidfd::open(pid) else {
            continue;
        };
        // Read again under the pin: the process the pidfd holds is ours and the helper.
        let helper = exe(pid).is_some_and(|e| e.file_name().is_some_and(|n| n == WEBVIEW_HELPER));
        if helper && ours(pid) && pin.alive() && pin.signal(libc::SIGTERM) {
            ended += 1;
        }
    }
    ended
}

/// Unmaps the pages of code and read-only data mapped from files, and trims the heap;
/// returns how many bytes of file pages were resident.
pub fn release_memory() -> std::io::Result<u64> {
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let mut released = 0;
    for mapping in releasable(&smaps) {
        // SAFETY: the range is a whole private, read-only mapping of a file, none of whose
        // pages was written (`releasable`): dropping its pages loses nothing, the next
        // access maps the same bytes from the page cache.
        let rc = unsafe {
            libc::madvise(
                mapping.start as *mut libc::c_void,
                mapping.len as libc::size_t,
                libc::MADV_DONTNEED,
            )
        };
        // One the kernel refuses (it changed meanwhile) stays as it is; the others go.
        if rc == 0 {
            released += mapping.resident;
        }
    }
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim has no preconditions; it only returns free memory.
    unsafe {
        libc::malloc_trim(0);
    }
    Ok(released)
}

#[derive(Debug, PartialEq)]
struct Mapping {
    start: usize,
    len: usize,
    /// Bytes resident when smaps was read.
    resident: u64,
}

/// The mappings in `smaps` (the text of /proc/PID/smaps) that hold only their file's
/// bytes: of a file (not a device), not writable, private, not locked, with no anonymous
/// (written) page.
fn releasable(smaps: &str) -> Vec<Mapping> {
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
                .filter(|(_, perms, path)| {
                    perms.as_bytes().get(1) == Some(&b'-')
                        && perms.as_bytes().get(3) == Some(&b'p')
                        && path.starts_with('/')
                        && !path.starts_with("/dev/")
                })
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
        } else if let Some(flags) = line.strip_prefix("VmFlags:") {
            // Device memory (io, pf), locked (lo), huge pages (ht): not ours to drop.
            if flags
                .split_whitespace()
                .any(|f| matches!(f, "io" | "pf" | "lo" | "ht"))
            {
                *clean = false;
            }
        }
    }
    finish(&mut current);
    out
}

/// A mapping's address range, permissions and path (`[heap]` and the like for memory of
/// no file, empty for anonymous memory).
type Header<'a> = ((usize, usize), &'a str, &'a str);

/// A mapping's first line: `Some(Some(..))` for a mapping, `Some(None)` for one whose line
/// does not parse; `None` for a field line.
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
        let _device = fields.next()?;
        let inode: u64 = fields.next()?.parse().ok()?;
        // The path is the rest of the line, spaces and all.
        let path = match line.split_once(&format!(" {inode} ")) {
            Some((_, rest)) => rest.trim(),
            None => "",
        };
        (inode != 0 && end > start).then_some(((start, end), perms, path))
    })();
    Some(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compositing_goes_off_only_without_a_gpu_and_unless_the_user_chose() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!has_render_node(&dir.path().join("missing")));
        std::fs::write(dir.path().join("card0"), "").unwrap();
        assert!(
            !has_render_node(dir.path()),
            "a display card alone renders nothing"
        );
        std::fs::write(dir.path().join("renderD128"), "").unwrap();
        assert!(has_render_node(dir.path()));

        assert_eq!(
            compositing_environment(false, false),
            [(NO_COMPOSITING, "1")]
        );
        assert!(compositing_environment(true, false).is_empty());
        assert!(compositing_environment(false, true).is_empty());
    }

    fn mapping(header: &str, rss: u64, anonymous: u64, flags: &str) -> String {
        format!(
            "{header}\nSize:               4 kB\nRss:             {rss} kB\nPss:             {rss} kB\n\
             Anonymous:       {anonymous} kB\nVmFlags: {flags}\n"
        )
    }

    #[test]
    fn only_unwritten_read_only_private_mappings_of_files_are_released() {
        let smaps = [
            // The program's rodata and code, a library's code: released.
            mapping(
                "00200000-003a7000 r--p 00000000 fe:01 1234    /usr/bin/lanyard",
                852,
                0,
                "rd mr mw me",
            ),
            mapping(
                "003a7000-00892000 r-xp 001a7000 fe:01 1234    /usr/bin/lanyard",
                4652,
                0,
                "rd ex mr mw me",
            ),
            mapping(
                "7f0000000000-7f0000100000 r-xp 00000000 fe:01 99    /usr/lib/my lib.so",
                400,
                0,
                "rd ex mr mw me",
            ),
            // RELRO, written by relocation before it was made read-only: kept.
            mapping(
                "00892000-00897000 r--p 00692000 fe:01 1234    /usr/bin/lanyard",
                20,
                20,
                "rd mr mw me ac",
            ),
            // Data: writable, kept.
            mapping(
                "00897000-0089c000 rw-p 00697000 fe:01 1234    /usr/bin/lanyard",
                20,
                8,
                "rd wr mr mw me ac",
            ),
            // Shared, a device's, locked: kept.
            mapping(
                "7f0000200000-7f0000300000 r--s 00000000 fe:01 1234    /usr/share/icons/cache",
                400,
                0,
                "rd mr me ms",
            ),
            mapping(
                "7f0000300000-7f0000400000 r--p 00000000 00:05 77    /dev/dri/renderD128",
                400,
                0,
                "rd mr mw me dc de",
            ),
            mapping(
                "7f0000400000-7f0000500000 r--p 00000000 00:1c 78    /opt/gpu/blob",
                400,
                0,
                "rd mr me io pf",
            ),
            mapping(
                "7f0000500000-7f0000600000 r-xp 00000000 fe:01 79    /usr/lib/locked.so",
                400,
                0,
                "rd ex mr mw me lo",
            ),
            // Memory of no file: kept.
            mapping(
                "01000000-01100000 rw-p 00000000 00:00 0    [heap]",
                500,
                500,
                "rd wr mr mw me ac",
            ),
            mapping(
                "7ffc00000000-7ffc00001000 r-xp 00000000 00:00 0    [vdso]",
                4,
                0,
                "rd ex mr mw me de",
            ),
            mapping(
                "7ffc00002000-7ffc00003000 r--p 00000000 00:00 0 ",
                4,
                0,
                "rd mr mw me",
            ),
        ]
        .concat();
        assert_eq!(
            releasable(&smaps),
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
                Mapping {
                    start: 0x7f0000000000,
                    len: 0x100000,
                    resident: 400 * 1024
                },
            ]
        );
    }

    #[test]
    fn a_mapping_whose_anonymous_line_is_missing_or_garbled_is_kept() {
        let smaps = "00200000-003a7000 r--p 00000000 fe:01 1234 /usr/bin/lanyard\nRss: 8 kB\n\
                     003a7000-00892000 r-xp 001a7000 fe:01 1234 /usr/bin/lanyard\nRss: 8 kB\nAnonymous: lots\n\
                     garbage-line\n";
        assert!(releasable(smaps).is_empty());
    }

    /// This test binary's own code and its libraries': after the release most of it is no
    /// longer resident, and the code still runs (it is mapped again as it is used).
    #[test]
    fn the_release_unmaps_the_running_programs_code_and_it_still_runs() {
        let resident = || {
            let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
            releasable(&smaps).iter().map(|m| m.resident).sum::<u64>()
        };
        let before = resident();
        assert!(before > 1 << 20, "only {before} bytes of code resident");
        let released = release_memory().unwrap();
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
