"""Access tokens from the Lanyard agent, over its local socket.

The protocol is newline-delimited JSON: ``hello`` first, then requests that carry an
``id`` the answer echoes (Lanyard's docs/protocol.md). Standard library only.
"""

import json
import os
import socket
import struct
import sys
import tempfile

if sys.platform == "win32":
    from . import _windows

__all__ = ["Agent", "BearerAuth", "Error", "default_socket"]
__version__ = "0.1.0"

PROTOCOL_VERSION = 1
# The agent's frame limit, newline included.
MAX_FRAME = 64 * 1024


class Error(Exception):
    """A failure the agent reported (``code`` is its stable error code), or one on the
    way to it (``not_running``, ``wrong_user``, ``bad_answer``)."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self):
        return "{} ({})".format(self.message, self.code)


def default_socket():
    """Where the agent listens: ``$LANYARD_SOCK``, else Lanyard's default for this user."""
    explicit = os.environ.get("LANYARD_SOCK")
    if explicit:
        return explicit
    if sys.platform == "win32":
        # Named by the user's SID, as Lanyard names it: no other account has it.
        return r"\\.\pipe\lanyard-" + _windows.own_sid()
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "lanyard", "agent.sock")
    return os.path.join(tempfile.gettempdir(), "lanyard-{}".format(os.getuid()), "agent.sock")


class _Unix:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError) as e:
            self.sock.close()
            raise Error(
                "not_running",
                "no Lanyard agent at {}: start one (`lanyard agent`, or the desktop app)".format(path),
            ) from e
        self._same_user()
        self.file = self.sock.makefile("rwb")

    def _same_user(self):
        # The agent holds tokens; one run by someone else must not get our requests.
        if not hasattr(socket, "SO_PEERCRED"):
            return
        creds = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        if uid != os.getuid():
            self.sock.close()
            raise Error("wrong_user", "the agent's socket belongs to another user (uid {})".format(uid))

    def close(self):
        self.file.close()
        self.sock.close()


class _Pipe:
    def __init__(self, path):
        try:
            self.file = open(path, "r+b", buffering=0)
        except FileNotFoundError as e:
            raise Error(
                "not_running",
                "no Lanyard agent at {}: start one (`lanyard agent`, or the desktop app)".format(path),
            ) from e
        # The agent holds tokens; a pipe served by another user (who made the name first)
        # must not get our requests. Fails closed: a server that cannot be checked is not
        # talked to.
        try:
            server = _windows.pipe_server_sid(self.file)
            own = _windows.own_sid()
        except OSError as e:
            self.file.close()
            raise Error("wrong_user", "cannot tell who serves {}: {}".format(path, e)) from e
        if server != own:
            self.file.close()
            raise Error(
                "wrong_user",
                "the agent at {} runs as {}, not as you ({})".format(path, server, own),
            )

    def close(self):
        self.file.close()


class Agent:
    """A connection to the Lanyard agent, opened on first use and kept."""

    def __init__(self, path=None):
        self.path = path or default_socket()
        self._conn = None
        self._next_id = 1

    def accounts(self):
        """The accounts the agent holds, with their state (no approval needed)."""
        return self._call({"op": "accounts"})

    def token(self, account, min_valid=60, scope=None, audience=None):
        """An access token for ``account``, valid at least ``min_valid`` more seconds."""
        return self.token_reply(account, min_valid, scope, audience)["access_token"]

    def token_reply(self, account, min_valid=60, scope=None, audience=None):
        """The agent's whole answer: ``access_token``, ``token_type``, ``expires_at``."""
        request = {"op": "token", "account": account, "min_valid": int(min_valid)}
        if scope is not None:
            request["scope"] = scope
        if audience is not None:
            request["audience"] = audience
        return self._call(request)

    def identity(self, account):
        """Who is signed in to ``account``: subject, issuer and claims."""
        return self._call({"op": "identity", "account": account})

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, request):
        if self._conn is None:
            conn = _Pipe(self.path) if sys.platform == "win32" else _Unix(self.path)
            try:
                self._exchange(conn, {"op": "hello", "version": PROTOCOL_VERSION})
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        try:
            return self._exchange(self._conn, request)
        except (OSError, Error) as e:
            # A broken connection is not kept; the agent's own answer is an Error too, but
            # leaves the connection usable.
            if not isinstance(e, Error) or e.code == "bad_answer":
                self.close()
            raise

    def _exchange(self, conn, request):
        request = dict(request, id=self._next_id)
        self._next_id += 1
        conn.file.write(json.dumps(request).encode() + b"\n")
        conn.file.flush()
        while True:
            line = conn.file.readline(MAX_FRAME + 1)
            if not line:
                raise Error("bad_answer", "the agent closed the connection")
            if len(line) > MAX_FRAME:
                raise Error("bad_answer", "the agent's answer is larger than the protocol allows")
            try:
                answer = json.loads(line)
            except ValueError as e:
                raise Error("bad_answer", "the agent's answer is not JSON") from e
            if not isinstance(answer, dict) or answer.get("id") != request["id"]:
                continue  # progress frames, or events: not this request's answer
            if "progress" in answer:
                continue
            if "ok" in answer:
                return answer["ok"]
            error = answer.get("error") or {}
            message = error.get("message", "the agent refused")
            if error.get("hint"):
                # The command that helps, as the agent's own clients say it.
                message += "; run `{}`".format(error["hint"])
            raise Error(error.get("code", "unknown"), message)


class BearerAuth:
    """``Authorization: Bearer TOKEN`` on each request, the token from the agent.

    A callable that takes a request and returns it, which is what both ``requests``
    (``auth=``) and ``httpx`` (``auth=``) accept.
    """

    def __init__(self, account, min_valid=60, agent=None):
        self.account = account
        self.min_valid = min_valid
        self.agent = agent or Agent()

    def __call__(self, request):
        token = self.agent.token(self.account, self.min_valid)
        request.headers["Authorization"] = "Bearer " + token
        return request
