/* A Windows program that plays Edge on a kiosk seat, for the Windows lane's tests (Wine has
 * no Edge). Installed by the test at Edge's own path, it receives the command line Lanyard
 * gives Edge (`--inprivate --user-data-dir=DIR ... URL`) and does what Edge does with it:
 * it keeps its state in DIR (the page it opened, in `Default\Current Session`), has the
 * page signed in, and runs until the seat stops it.
 *
 * The signing in is done by the test's browser driver, a host program named by
 * LANYARD_TEST_SEAT_BROWSER, with Chromium. Wine starts host programs detached (no
 * handle follows them, and a job cannot hold them), so Chromium keeps its own profile
 * outside the seat's (LANYARD_TEST_BROWSER_OUTSIDE): what is in DIR was written by this
 * program, which the seat's job does hold. DIR is passed on as its host path, for the
 * driver's log. Built by `cargo xtask windows lane`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>

typedef char *(__cdecl *unix_name_fn)(const WCHAR *);

static const WCHAR PROFILE[] = L"--user-data-dir=";

/* Appends `arg` to `line`, quoted, with a space before it. */
static int append(WCHAR *line, size_t size, const WCHAR *arg) {
    size_t used = wcslen(line);
    int n = _snwprintf(line + used, size - used, L"%ls\"%ls\"", used ? L" " : L"", arg);
    return n >= 0 && (size_t)n < size - used;
}

/* Keeps the page it was asked to open in the profile, as a browser keeps its session. */
static int remember(int argc, WCHAR **argv) {
    const WCHAR *profile = NULL;
    for (int i = 1; i < argc; i++) {
        if (wcsncmp(argv[i], PROFILE, wcslen(PROFILE)) == 0) profile = argv[i] + wcslen(PROFILE);
    }
    if (!profile || argc < 2) return 0;
    WCHAR path[4096];
    _snwprintf(path, 4096, L"%ls\\Default", profile);
    path[4095] = 0;
    if (!CreateDirectoryW(path, NULL) && GetLastError() != ERROR_ALREADY_EXISTS) return 0;
    _snwprintf(path, 4096, L"%ls\\Default\\Current Session", profile);
    path[4095] = 0;
    HANDLE file = CreateFileW(path, FILE_APPEND_DATA, FILE_SHARE_READ, NULL, OPEN_ALWAYS,
                              FILE_ATTRIBUTE_NORMAL, NULL);
    if (file == INVALID_HANDLE_VALUE) return 0;
    DWORD written;
    const WCHAR *url = argv[argc - 1];
    BOOL ok = WriteFile(file, url, (DWORD)(wcslen(url) * sizeof(WCHAR)), &written, NULL) &&
              WriteFile(file, L"\n", sizeof(WCHAR), &written, NULL);
    CloseHandle(file);
    return ok;
}

int wmain(int argc, WCHAR **argv) {
    const WCHAR *driver = _wgetenv(L"LANYARD_TEST_SEAT_BROWSER");
    if (!driver) {
        fwprintf(stderr, L"msedge (test): LANYARD_TEST_SEAT_BROWSER is not set\n");
        return 2;
    }
    unix_name_fn unix_name =
        (unix_name_fn)GetProcAddress(GetModuleHandleW(L"kernel32"), "wine_get_unix_file_name");
    static WCHAR line[32768];
    line[0] = 0;
    if (!append(line, 32768, driver)) return 2;
    for (int i = 1; i < argc; i++) {
        WCHAR arg[4096];
        if (wcsncmp(argv[i], PROFILE, wcslen(PROFILE)) == 0 && unix_name) {
            char *host = unix_name(argv[i] + wcslen(PROFILE));
            if (!host) {
                fwprintf(stderr, L"msedge (test): no host path for %ls\n", argv[i]);
                return 2;
            }
            _snwprintf(arg, 4096, L"%ls%hs", PROFILE, host);
            arg[4095] = 0;
            HeapFree(GetProcessHeap(), 0, host);
        } else {
            wcsncpy(arg, argv[i], 4095);
            arg[4095] = 0;
        }
        if (!append(line, 32768, arg)) return 2;
    }
    if (!remember(argc, argv)) {
        fwprintf(stderr, L"msedge (test): cannot write to the profile: error %lu\n", GetLastError());
        return 1;
    }
    SetEnvironmentVariableW(L"LANYARD_TEST_BROWSER_OUTSIDE", L"1");
    STARTUPINFOW start = {.cb = sizeof start};
    PROCESS_INFORMATION process;
    if (!CreateProcessW(NULL, line, NULL, NULL, FALSE, 0, NULL, NULL, &start, &process)) {
        fwprintf(stderr, L"msedge (test): cannot run %ls: error %lu\n", driver, GetLastError());
        return 1;
    }
    CloseHandle(process.hThread);
    CloseHandle(process.hProcess);
    /* Like Edge, it runs until it is closed: the seat's job ends it. */
    Sleep(INFINITE);
    return 0;
}
