/* Reads a generic credential back from Credential Manager, as another program on the
 * machine would: `credread TARGET` prints its blob (a password, stored as UTF-16) as
 * UTF-8, or exits 1 when there is no such credential. Built by `cargo xtask windows`. */
#include <stdio.h>
#include <stdlib.h>
#include <windows.h>
#include <wincred.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: credread TARGET\n");
        return 2;
    }
    PCREDENTIALA credential;
    if (!CredReadA(argv[1], CRED_TYPE_GENERIC, 0, &credential)) {
        fprintf(stderr, "no credential %s: error %lu\n", argv[1], GetLastError());
        return 1;
    }
    int units = (int)(credential->CredentialBlobSize / 2);
    const wchar_t *blob = (const wchar_t *)credential->CredentialBlob;
    int size = WideCharToMultiByte(CP_UTF8, 0, blob, units, NULL, 0, NULL, NULL);
    char *text = malloc(size > 0 ? size : 1);
    WideCharToMultiByte(CP_UTF8, 0, blob, units, text, size, NULL, NULL);
    fwrite(text, 1, size, stdout);
    free(text);
    CredFree(credential);
    return 0;
}
