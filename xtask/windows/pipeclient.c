/* A Windows program that asks Lanyard's broker for a token over its named pipe, the way
 * any tool on a Windows desktop would: `pipeclient PIPE ACCOUNT` writes `hello` and `token`
 * and prints the two answer lines. `pipeclient PIPE --end-session` asks a kiosk's broker
 * to end the seat session instead, as a center's seat software does. It is not `lanyard.exe`, so the broker names it by its
 * own executable, and it needs an approval like any app. Built by `cargo xtask windows`. */
#include <stdio.h>
#include <string.h>
#include <windows.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: pipeclient PIPE ACCOUNT|--end-session\n");
        return 2;
    }
    HANDLE pipe = CreateFileA(argv[1], GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                              SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
    if (pipe == INVALID_HANDLE_VALUE) {
        fprintf(stderr, "cannot open %s: error %lu\n", argv[1], GetLastError());
        return 1;
    }
    char request[1024];
    int n = strcmp(argv[2], "--end-session") == 0
                ? snprintf(request, sizeof request,
                           "{\"id\": 1, \"op\": \"hello\", \"version\": 1}\n"
                           "{\"id\": 2, \"op\": \"end_session\"}\n")
                : snprintf(request, sizeof request,
                           "{\"id\": 1, \"op\": \"hello\", \"version\": 1}\n"
                           "{\"id\": 2, \"op\": \"token\", \"account\": \"%s\", \"min_valid\": 0}\n",
                           argv[2]);
    DWORD written;
    if (n < 0 || n >= (int)sizeof request || !WriteFile(pipe, request, (DWORD)n, &written, NULL)) {
        fprintf(stderr, "cannot write: error %lu\n", GetLastError());
        return 1;
    }
    static char answer[1 << 20];
    DWORD total = 0, got;
    int lines = 0;
    while (lines < 2 && total < sizeof answer - 1 &&
           ReadFile(pipe, answer + total, (DWORD)(sizeof answer - 1 - total), &got, NULL) && got > 0) {
        for (DWORD i = total; i < total + got; i++) {
            if (answer[i] == '\n') lines++;
        }
        total += got;
    }
    fwrite(answer, 1, total, stdout);
    CloseHandle(pipe);
    return lines == 2 ? 0 : 1;
}
