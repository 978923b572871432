# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way this collection reads, writes, renames and removes files on a node, and checks who can read one.

Every failure is a FileOperationError whose message names the path the user
gave (never a temporary file) and the operation, with the reason in words:
"cannot create directory /etc/containerd/certs.d/docker.io: /etc/containerd/certs.d
is not a directory". The modules turn it into a task failure. What AnsibleModule's own helpers refuse (an
invalid mode, an SELinux context that cannot be set) fails the task through its fail_json.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import shutil
import stat
import tempfile
import time

DIRECTORY_MODE = 0o755
# A rename that fails with one of these may be retried by writing the file in place, with unsafe_writes
# (as AnsibleModule.atomic_move does): a bind-mounted file, say, cannot be replaced.
_UNSAFE_WRITE_ERRORS = (errno.EBUSY, errno.ETXTBSY, errno.EPERM, errno.EACCES, errno.EXDEV)

_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENAMETOOLONG: "file name too long (at most 255 bytes a name, 4095 a path)",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.ELOOP: "too many levels of symbolic links",
    errno.EBUSY: "device or resource busy",
    errno.EXDEV: "on another file system",
    errno.EIO: "input/output error",
}


class FileOperationError(Exception):
    """A file operation on the node failed. str() names the operation, the user's path and the reason."""

    def __init__(self, operation, path, reason, error_number=None):
        super().__init__(f"cannot {operation} {path}: {reason}")
        self.operation = operation
        self.path = path
        self.reason = reason
        self.errno = error_number


def _user():
    uid = os.geteuid()
    try:
        return f"{pwd.getpwuid(uid).pw_name!r} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _not_a_directory(path):
    """Return the nearest ancestor of path that exists and is not a directory (None if there is none)."""
    parent = os.path.dirname(path)
    found = None
    while parent and parent != os.path.dirname(parent):
        if os.path.lexists(parent) and not os.path.isdir(parent):
            found = parent  # keep going: the one nearest the root is the culprit
        parent = os.path.dirname(parent)
    return found


def describe(error, path, directory=None):
    """Return the reason an OSError on path happened, in words that name no temporary file.

    directory: the directory a permission was needed in (the parent of path by default), or
    False when the permission is on path itself (chown, chmod).
    """
    number = getattr(error, "errno", None)
    if number == errno.ENOTDIR:
        culprit = _not_a_directory(path)
        return f"{culprit} is not a directory" if culprit else "a component of the path is not a directory"
    if number == errno.EISDIR:
        return f"{path} is a directory"
    if number == errno.EEXIST:
        return f"{path} already exists"
    if number == errno.ENOENT:
        return f"{os.path.dirname(path)} does not exist"
    if number in (errno.EACCES, errno.EPERM):
        if directory is False:
            return f"{_REASONS[number]} for {_user()}"
        return f"{_REASONS[number]} for {_user()} in {directory or os.path.dirname(path)}"
    if number in _REASONS:
        return _REASONS[number]
    return (getattr(error, "strerror", None) or str(error) or type(error).__name__).lower()


def _fail(operation, path, error, directory=None):
    return FileOperationError(operation, path, describe(error, path, directory), getattr(error, "errno", None))


def load_file_if_exists(path, max_bytes=None):
    """Return the bytes of the file at path (at most max_bytes + 1 of them when given), None when there is none."""
    try:
        with open(path, "rb") as handle:
            return handle.read() if max_bytes is None else handle.read(max_bytes + 1)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise _fail("read", path, error) from None


def exists(path):
    """os.path.lexists, but a path too long or under a file is an error, not a missing file."""
    try:
        os.lstat(path)
        return True
    except FileNotFoundError:
        return False
    except OSError as error:
        raise _fail("read", path, error) from None


def ensure_directory(directory, mode=DIRECTORY_MODE):
    """Create directory and any missing parent, each with mode (containerd and pf9 must enter them).

    Return the directories created, outermost first.
    """
    missing = []
    current = directory
    while not os.path.isdir(current):
        if os.path.lexists(current):
            raise FileOperationError("create directory", directory, f"{current} exists and is not a directory",
                                     errno.ENOTDIR)
        missing.append(current)
        current = os.path.dirname(current)
    created = []
    for new in reversed(missing):
        try:
            os.mkdir(new)
            os.chmod(new, mode)
        except OSError as error:
            raise _fail("create directory", new, error) from None
        created.append(new)
    return created


def file_arguments(module, path, default_mode=None, from_task=True):
    """The mode, owner, group, SELinux context and attributes path is to have.

    from_task: the task's own file options (add_file_common_args), mode default_mode when the task
    sets none; otherwise mode default_mode and nothing else (a file that is not the task's own).
    """
    params = dict(module.params) if from_task else {}
    if params.get("mode") is None:
        params["mode"] = default_mode
    return module.load_file_common_arguments(params, path=path)


def set_attributes(module, file_args, changed=False, diff=None):
    """Give file_args["path"] the attributes of file_args (file_arguments()); return whether anything changed."""
    return module.set_fs_attributes_if_different(file_args, changed, diff)


def _keep_attributes(module, path, tmp_path):
    """Give the temporary file the mode, owner, group and SELinux context of the file it replaces.

    A new file keeps mkstemp's 0600 (our files can hold credentials until file_args apply) and gets
    the SELinux context the policy gives path.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    if info is not None:
        os.chmod(tmp_path, stat.S_IMODE(info.st_mode))
        try:
            os.chown(tmp_path, info.st_uid, info.st_gid)
        except PermissionError:
            pass  # as atomic_move: a user who may not give the file away writes it as their own
    if module.selinux_enabled():
        context = module.selinux_context(path) if info is not None else module.selinux_default_context(path)
        module.set_context_if_different(tmp_path, context, False)


def _replace(module, tmp_path, path, content):
    """Rename tmp_path over path; with unsafe_writes, write content into path when the rename is refused."""
    try:
        os.rename(tmp_path, path)
        return
    except OSError as error:
        if error.errno not in _UNSAFE_WRITE_ERRORS or not module.params.get("unsafe_writes"):
            raise _fail("write", path, error) from None
    try:
        with open(path, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        raise _fail("write", path, error) from None


def write_file(module, path, content, file_args=None):
    """Atomically replace path with content (bytes), then give it file_args (file_arguments()) when given.

    The temporary file lives beside the target so the final rename is atomic; it is
    created 0600 and keeps the old file's attributes (_keep_attributes) until file_args
    apply. It is removed whatever happens.
    """
    try:
        fd, tmp_path = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    except OSError as error:
        raise _fail("write", path, error) from None
    try:
        try:
            with os.fdopen(fd, "wb") as tmp_file:
                tmp_file.write(content)
                tmp_file.flush()
                os.fsync(tmp_file.fileno())
            _keep_attributes(module, path, tmp_path)
        except OSError as error:
            raise _fail("write", path, error) from None
        _replace(module, tmp_path, path, content)
    finally:
        if os.path.lexists(tmp_path):
            os.unlink(tmp_path)
    if file_args is not None:
        set_attributes(module, file_args)


def rename(source, target):
    """Rename source to target (one step, on one file system)."""
    try:
        os.rename(source, target)
    except OSError as error:
        raise FileOperationError(
            "rename", f"{source} to {target}", describe(error, target), getattr(error, "errno", None)
        ) from None


def remove(path):
    try:
        os.remove(path)
    except OSError as error:
        raise _fail("remove", path, error) from None


PRIVATE_MODE = 0o600  # a backup that holds secrets


def _private_copy(module, path, copy):
    """module.preserved_copy, but mode PRIVATE_MODE from the moment copy exists: the copy is made in a 0700
    directory beside path, made private there, then renamed to copy; the directory is removed whatever happens."""
    directory = tempfile.mkdtemp(dir=os.path.dirname(path), prefix=".tmp-backup-")
    try:
        inside = os.path.join(directory, os.path.basename(copy))
        module.preserved_copy(path, inside)
        os.chmod(inside, PRIVATE_MODE)
        os.rename(inside, copy)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def backup(module, path, private=False):
    """Copy path, its mode, owner, group and SELinux context preserved, to a timestamped name beside it.

    private: the copy holds secrets: mode PRIVATE_MODE whatever path's mode, never readable by others meanwhile.
    Return that name, as module.backup_local does ("" when there is no file; not copied in check mode).
    """
    if not exists(path):
        return ""
    copy = f"{path}.{os.getpid()}.{time.strftime('%Y-%m-%d@%H:%M:%S~', time.localtime())}"
    if not module.check_mode:
        try:
            if private:
                _private_copy(module, path, copy)
            else:
                module.preserved_copy(path, copy)
        except OSError as error:  # shutil.Error is one
            raise _fail("back up", path, error) from None
    return copy


def check_owner_group(owner, group, path):
    """Refuse, before anything is written, an owner or group the node does not know.

    path: what would be chowned, for the message.
    """
    if owner is not None and not str(owner).isdigit():
        try:
            pwd.getpwnam(owner)
        except KeyError:
            raise FileOperationError("chown", path, f"owner: user {owner!r} does not exist on this node") from None
    if group is not None and not str(group).isdigit():
        try:
            grp.getgrnam(group)
        except KeyError:
            raise FileOperationError("chgrp", path, f"group: group {group!r} does not exist on this node") from None


# --- who can read a file -------------------------------------------------


def _user_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_name(gid):
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _allowed(info, uid, gids, bit):
    """Apply the owner/group/other classes as the kernel does: the first class that matches decides."""
    if uid == info.st_uid:
        return bool(info.st_mode & (bit << 6))
    if info.st_gid in gids:
        return bool(info.st_mode & (bit << 3))
    return bool(info.st_mode & bit)


def _describe_stat(info):
    return f"mode {stat.S_IMODE(info.st_mode):04o}, owner {_user_name(info.st_uid)}:{_group_name(info.st_gid)}"


def _ancestors(path):
    """Directories from / down to path's parent."""
    directories = []
    directory = os.path.dirname(path)
    while True:
        directories.append(directory)
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return list(reversed(directories))


def _account(user):
    """Return (uid, gids) of user; raise KeyError when the node has no such user."""
    account = pwd.getpwnam(user)
    return account.pw_uid, set(os.getgrouplist(account.pw_name, account.pw_gid))


def enterable_by(path, user):
    """Return (True, reason) when user can enter every directory leading to path, else (False, reason).

    Through symlinks too. Directories that do not exist yet count as enterable: ensure_directory
    creates them 0755. Uses the permission bits and owners only (not POSIX ACLs or SELinux).
    """
    try:
        user_id, gids = _account(user)
    except KeyError:
        return False, f"there is no user {user!r} on this node"
    if user_id == 0:
        return True, "root enters any directory"
    path = os.path.abspath(path)
    directories = _ancestors(path)
    directories += [d for d in _ancestors(os.path.realpath(path)) if d not in directories]
    for directory in directories:
        try:
            info = os.stat(directory)
        except FileNotFoundError:
            continue
        except OSError as error:
            return False, f"cannot inspect {directory}: {error.strerror}"
        if not stat.S_ISDIR(info.st_mode):
            return False, f"{directory} is not a directory"
        if not _allowed(info, user_id, gids, stat.S_IXOTH):
            why = f"({_describe_stat(info)}): it needs the x bit for that user"
            return False, f"{user!r} cannot enter directory {directory} {why}"
    return True, f"{user!r} can enter the directories leading to {path}"


def readable_by(path, user):
    """Return (True, reason) when user can read the file at path, else (False, reason).

    Uses the permission bits and owners only (not POSIX ACLs or SELinux), as the kernel
    applies them to user and its groups, on the file and on every directory leading to it
    (see enterable_by).
    """
    ok, reason = enterable_by(path, user)
    if not ok:
        return ok, reason
    user_id, gids = _account(user)
    if user_id == 0:
        return True, "root reads any file"
    path = os.path.abspath(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return False, f"{path} does not exist"
    except OSError as error:
        return False, f"cannot inspect {path}: {error.strerror}"
    if not stat.S_ISREG(info.st_mode):
        return False, f"{path} is not a regular file"
    if not _allowed(info, user_id, gids, stat.S_IROTH):
        return False, f"{user!r} cannot read {path} ({_describe_stat(info)})"
    return True, f"{user!r} can read {path} ({_describe_stat(info)})"
