"""make run's keys: the services' CRISIS_CIPHER_KEY and the embedded stream's key are apart, so either rotates alone;
the embedded nats-server's password; and var/ kept private to the user."""

from __future__ import annotations

import stat
from pathlib import Path

from services.runtime.launcher import cipher_key, make_private, nats_password, stream_key


def test_a_fresh_var_dir_gets_two_different_keys_readable_only_by_the_owner(tmp_path: Path) -> None:
    services = cipher_key(tmp_path)
    stream = stream_key(tmp_path, services)
    assert stream != services
    for name in ("cipher.key", "nats.key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    # both are kept: the next start reads the same keys
    assert (cipher_key(tmp_path), stream_key(tmp_path, services)) == (services, stream)


def test_a_stream_made_before_the_split_keeps_the_key_it_was_encrypted_with(tmp_path: Path) -> None:
    services = cipher_key(tmp_path)
    (tmp_path / "nats").mkdir()  # encrypted with the services' key by an older make run
    assert stream_key(tmp_path, services) == services
    assert stream_key(tmp_path, "a rotated services key") == services


def test_the_nats_password_is_made_once_and_readable_only_by_the_owner(tmp_path: Path) -> None:
    password = nats_password(tmp_path)
    assert len(password) >= 32 and password == nats_password(tmp_path)
    assert stat.S_IMODE((tmp_path / "nats.password").stat().st_mode) == 0o600
    assert password not in {cipher_key(tmp_path), stream_key(tmp_path, cipher_key(tmp_path))}


def test_an_older_var_dir_is_made_private_without_adding_permissions(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    (var_dir / "logs").mkdir(parents=True)
    (var_dir / "nats" / "jetstream").mkdir(parents=True)
    files = {
        var_dir / "projections.sqlite": 0o644,
        var_dir / "logs" / "dispatcher.log": 0o664,
        var_dir / "nats" / "jetstream" / "meta.inf": 0o640,
        var_dir / "cipher.key": 0o600,
        var_dir / "read-only.txt": 0o444,
    }
    for path, mode in files.items():
        path.write_text("generated")
        path.chmod(mode)
    for directory in (var_dir, var_dir / "logs", var_dir / "nats", var_dir / "nats" / "jetstream"):
        directory.chmod(0o755)
    (var_dir / "link").symlink_to(tmp_path)  # not followed: what it points to keeps its mode
    tmp_path.chmod(0o755)

    make_private(var_dir)

    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in files} == {
        "projections.sqlite": 0o600,
        "dispatcher.log": 0o600,
        "meta.inf": 0o600,
        "cipher.key": 0o600,
        "read-only.txt": 0o400,
    }
    for directory in (var_dir, var_dir / "logs", var_dir / "nats", var_dir / "nats" / "jetstream"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755
