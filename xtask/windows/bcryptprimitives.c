/* ProcessPrng for Wine 8, which lacks it: Rust's standard library imports it from
 * bcryptprimitives.dll (Windows 10 and later) for its random numbers. This shim fills
 * the buffer from advapi32's SystemFunction036 (RtlGenRandom), the generator Wine has.
 * Built with MinGW by `cargo xtask windows` into the test prefix's system32; never shipped. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk)) return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
