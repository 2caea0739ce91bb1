"""make run's keys: the services' CRISIS_CIPHER_KEY and the embedded stream's key are apart, so either rotates alone."""

from __future__ import annotations

import stat
from pathlib import Path

from services.runtime.launcher import cipher_key, stream_key


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
