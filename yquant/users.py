"""Dashboard users: a JSON file of argon2id password hashes and optional TOTP secrets.

The file (mode 0600, default ``<state_dir>/users.json``, setting ``YQ_DASHBOARD__USERS_FILE``)::

    {"users": {"admin": {"password_hash": "$argon2id$...", "totp_secret": null,
                         "created_at": "2025-01-01T00:00:00+00:00", "timezone": null}}}

``yquant user add NAME [--password-stdin] [--totp]`` writes it; the dashboard re-reads it when
it changes, so a new user or password needs no restart. ``yquant up`` creates an ``admin``
user with a random password on first start (development only).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import hashlib
import os
import re
import secrets
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict

from yquant.errors import ConfigurationError
from yquant.settings import Settings

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
MIN_PASSWORD_LENGTH = 12
ADMIN = "admin"
# One of OWASP's argon2id profiles (12 MiB, 3 passes; as strong as 19 MiB with 2): a verification
# costs ~50 ms and 12 MiB, which keeps the dashboard in its memory budget (argon2-cffi's default
# takes 64 MiB). Hashes carry their parameters, so older hashes still verify.
ARGON2_TIME_COST = 3
ARGON2_MEMORY_KIB = 12_288
ARGON2_PARALLELISM = 1


class User(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    password_hash: str
    totp_secret: str | None = None
    created_at: str = ""
    timezone: str | None = None
    # "viewer": sees every page, changes nothing (no order, cancel, halt, limit, schedule).
    # Users saved before roles existed are admins.
    role: Literal["admin", "viewer"] = "admin"

    @property
    def can_write(self) -> bool:
        return self.role == "admin"

    @property
    def credential(self) -> str:
        """Changes whenever the password or the TOTP secret does: a session made under an older
        credential is no longer honoured."""
        material = f"{self.password_hash}\n{self.totp_secret or ''}".encode()
        return hashlib.sha256(material).hexdigest()[:24]


def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB, parallelism=ARGON2_PARALLELISM)


def hash_password(password: str) -> str:
    return str(_hasher().hash(password))


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches; never raises for a wrong or malformed hash."""
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    try:
        return bool(_hasher().verify(password_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


_DUMMY_HASH: str | None = None


def dummy_verify(password: str) -> None:
    """Spend the time of a real verification, so an unknown name answers as slowly as a known one."""
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
    verify_password(_DUMMY_HASH, password)


def normalise_name(name: str) -> str:
    return name.strip().lower()


def users_path(settings: Settings, state_dir: Path | None = None) -> Path:
    if settings.dashboard.users_file is not None:
        return settings.dashboard.users_file
    return (state_dir or settings.state_dir) / "users.json"


def load_users(path: Path) -> dict[str, User]:
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except orjson.JSONDecodeError as exc:
        raise ConfigurationError(f"users file {path} is not valid JSON: {exc}") from exc
    entries = data.get("users", {}) if isinstance(data, dict) else {}
    if not isinstance(entries, dict):
        raise ConfigurationError(f"users file {path}: 'users' must be an object")
    return {normalise_name(name): User(name=normalise_name(name), **fields) for name, fields in entries.items()}


def write_private(path: Path, content: bytes) -> None:
    """Write atomically with mode 0600 (the file never exists with wider rights)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_users(path: Path, users: dict[str, User]) -> None:
    body = {"users": {name: user.model_dump(exclude={"name"}) for name, user in sorted(users.items())}}
    write_private(path, orjson.dumps(body, option=orjson.OPT_INDENT_2) + b"\n")


def add_user(
    path: Path, name: str, password: str, *, totp: bool = False, role: str | None = None
) -> tuple[User, str | None]:
    """Create or update a user (a new user is an admin unless ``role`` says otherwise; an existing
    one keeps its role); returns the user and, with ``totp``, the otpauth:// URI to enrol."""
    name = normalise_name(name)
    if not NAME_PATTERN.match(name):
        raise ValueError("a user name is 1-32 characters: lower-case letters, digits, '.', '_' or '-'")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if role not in (None, "admin", "viewer"):
        raise ValueError("a role is admin or viewer")
    users = load_users(path)
    previous = users.get(name)
    totp_secret = previous.totp_secret if previous else None
    uri: str | None = None
    if totp:
        import pyotp

        totp_secret = pyotp.random_base32()
        uri = str(pyotp.TOTP(totp_secret).provisioning_uri(name=name, issuer_name="yQuant"))
    user = User(
        name=name,
        password_hash=hash_password(password),
        totp_secret=totp_secret,
        created_at=previous.created_at if previous else datetime.now(UTC).isoformat(),
        timezone=previous.timezone if previous else None,
        role=role or (previous.role if previous else "admin"),
    )
    users[name] = user
    save_users(path, users)
    return user, uri


def remove_user(path: Path, name: str) -> bool:
    users = load_users(path)
    if users.pop(normalise_name(name), None) is None:
        return False
    save_users(path, users)
    return True


def ensure_admin_user(settings: Settings, state_dir: Path) -> str | None:
    """First start of ``yquant up``: create ``admin`` with a random password if there is no users file.

    The password is written to ``<state_dir>/admin-password`` (0600) and returned so it can be
    printed once; None when a users file exists already (or in production, where the operator
    must create users deliberately).
    """
    path = users_path(settings, state_dir)
    if path.exists() or settings.environment == "production":
        return None
    password = secrets.token_urlsafe(18)
    add_user(path, ADMIN, password)
    write_private(state_dir / "admin-password", password.encode() + b"\n")
    return password


class UserStore:
    """The users file, re-read when its modification time changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, User] = {}
        self.reload_if_changed()

    def reload_if_changed(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._users = None, {}
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._users = load_users(self.path)
            self._stamp = stamp

    def get(self, name: str) -> User | None:
        self.reload_if_changed()
        return self._users.get(normalise_name(name))

    def names(self) -> list[str]:
        self.reload_if_changed()
        return sorted(self._users)


# --- the ``yquant user`` command ---------------------------------------------------------


def add_user_command(sub: Any) -> None:
    """Register ``yquant user add|list|remove`` on the ``yquant`` command's subparsers."""
    user = sub.add_parser("user", help="dashboard users (argon2 password hashes, optional TOTP)")
    actions = user.add_subparsers(dest="user_command", required=True)
    add = actions.add_parser("add", help="create a user or set a new password")
    add.add_argument("name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.add_argument("--totp", action="store_true", help="require a TOTP code (prints the enrolment URI)")
    add.add_argument(
        "--role",
        choices=("admin", "viewer"),
        help="admin (a new user's default) or viewer: sees everything, changes nothing",
    )
    listing = actions.add_parser("list", help="list users")
    listing.add_argument("--json", action="store_true", help="as JSON: name, role, totp, created_at")
    remove = actions.add_parser("remove", help="delete a user")
    remove.add_argument("name")
    logout = actions.add_parser("logout-all", help="end every dashboard session of a user now")
    logout.add_argument("name")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat: ") != first:
        raise ValueError("the passwords differ")
    return first


async def end_sessions(settings: Settings, name: str) -> int:
    """Delete every dashboard session of ``name`` in Valkey; a dashboard drops its cached copy
    within its short session cache time."""
    from yquant import keys, valkey

    wanted = normalise_name(name)
    client = valkey.connect(settings.valkey)
    ended = 0
    try:
        async for key in client.scan_iter(match=keys.dashboard_session("*"), count=500):
            if keys.text(await client.hget(key, "user") or b"") == wanted:
                ended += int(await client.delete(key))
    finally:
        await client.aclose()
    return ended


def run_user_command(args: argparse.Namespace, settings: Settings) -> int:
    path = users_path(settings)
    out = sys.stdout
    if args.user_command == "list":
        users = sorted(load_users(path).items())
        if args.json:
            rows = [
                {"name": name, "role": u.role, "totp": bool(u.totp_secret), "created_at": u.created_at}
                for name, u in users
            ]
            out.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
            return 0
        for name, user in users:
            out.write(f"{name}  {user.role}{'  (totp)' if user.totp_secret else ''}\n")
        return 0
    if args.user_command == "logout-all":
        ended = asyncio.run(end_sessions(settings, args.name))
        out.write(f"ended {ended} session(s) of {normalise_name(args.name)}\n")
        return 0
    if args.user_command == "remove":
        removed = remove_user(path, args.name)
        out.write(f"{'removed' if removed else 'no such user'}: {args.name}\n")
        return 0 if removed else 1
    try:
        user, uri = add_user(path, args.name, _read_password(args.password_stdin), totp=args.totp, role=args.role)
    except ValueError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    out.write(f"user {user.name} ({user.role}) saved in {path}\n")
    if uri is not None:
        out.write(f"TOTP secret: {user.totp_secret}\nenrol this URI in an authenticator app:\n{uri}\n")
    return 0
