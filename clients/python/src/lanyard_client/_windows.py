"""Who is who on Windows, through the Win32 API (ctypes): the SID of this process's user,
and of the user the process at the other end of a named pipe runs as."""

import ctypes
import msvcrt
from ctypes import wintypes

_advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)
_kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)

_TOKEN_QUERY = 0x0008
_TOKEN_USER = 1
_PROCESS_QUERY_LIMITED_INFORMATION = 0x1000

_kernel32.GetCurrentProcess.restype = wintypes.HANDLE
_kernel32.GetCurrentProcess.argtypes = []
_kernel32.OpenProcess.restype = wintypes.HANDLE
_kernel32.OpenProcess.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
_kernel32.CloseHandle.restype = wintypes.BOOL
_kernel32.CloseHandle.argtypes = [wintypes.HANDLE]
_kernel32.LocalFree.restype = wintypes.HLOCAL
_kernel32.LocalFree.argtypes = [wintypes.HLOCAL]
_kernel32.GetNamedPipeServerProcessId.restype = wintypes.BOOL
_kernel32.GetNamedPipeServerProcessId.argtypes = [wintypes.HANDLE, ctypes.POINTER(wintypes.ULONG)]
_advapi32.OpenProcessToken.restype = wintypes.BOOL
_advapi32.OpenProcessToken.argtypes = [wintypes.HANDLE, wintypes.DWORD, ctypes.POINTER(wintypes.HANDLE)]
_advapi32.GetTokenInformation.restype = wintypes.BOOL
_advapi32.GetTokenInformation.argtypes = [
    wintypes.HANDLE, ctypes.c_int, ctypes.c_void_p, wintypes.DWORD, ctypes.POINTER(wintypes.DWORD),
]
_advapi32.ConvertSidToStringSidW.restype = wintypes.BOOL
_advapi32.ConvertSidToStringSidW.argtypes = [ctypes.c_void_p, ctypes.POINTER(wintypes.LPWSTR)]


def _fail(what):
    raise ctypes.WinError(ctypes.get_last_error(), what)


def _token_user(process):
    """The string SID of the user whose token `process` (a handle) has."""
    token = wintypes.HANDLE()
    if not _advapi32.OpenProcessToken(process, _TOKEN_QUERY, ctypes.byref(token)):
        _fail("OpenProcessToken")
    try:
        size = wintypes.DWORD()
        _advapi32.GetTokenInformation(token, _TOKEN_USER, None, 0, ctypes.byref(size))
        buffer = ctypes.create_string_buffer(size.value)
        if not _advapi32.GetTokenInformation(token, _TOKEN_USER, buffer, size, ctypes.byref(size)):
            _fail("GetTokenInformation")
        # TOKEN_USER begins with SID_AND_ATTRIBUTES, which begins with the SID's pointer.
        sid = ctypes.cast(buffer, ctypes.POINTER(ctypes.c_void_p))[0]
        text = wintypes.LPWSTR()
        if not _advapi32.ConvertSidToStringSidW(sid, ctypes.byref(text)):
            _fail("ConvertSidToStringSidW")
        try:
            return text.value
        finally:
            _kernel32.LocalFree(ctypes.cast(text, wintypes.HLOCAL))
    finally:
        _kernel32.CloseHandle(token)


def own_sid():
    """This process's user."""
    return _token_user(_kernel32.GetCurrentProcess())


def pipe_server_sid(pipe_file):
    """The user the server of the named pipe open as `pipe_file` runs as."""
    handle = wintypes.HANDLE(msvcrt.get_osfhandle(pipe_file.fileno()))
    pid = wintypes.ULONG()
    if not _kernel32.GetNamedPipeServerProcessId(handle, ctypes.byref(pid)):
        _fail("GetNamedPipeServerProcessId")
    process = _kernel32.OpenProcess(_PROCESS_QUERY_LIMITED_INFORMATION, False, pid.value)
    if not process:
        _fail("OpenProcess")
    try:
        return _token_user(process)
    finally:
        _kernel32.CloseHandle(process)
