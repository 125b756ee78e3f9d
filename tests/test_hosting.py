"""Hosted-demo policy: training modes, password, caps, and bounds of every Generate input."""
from __future__ import annotations

import pytest

from aigc.serve import hosting
from aigc.serve.hosting import Policy, clamp_epochs, load_policy, password_ok


def test_default_policy_is_local_use():
    policy = load_policy(env={}, address="localhost")
    assert policy.training == "on" and policy.training_visible and not policy.needs_password
    assert policy.max_epochs == hosting.DEFAULT_MAX_EPOCHS and policy.cooldown_s == 0 and not policy.notices
    assert policy.loopback and not policy.hosted and policy.allows_server_paths and policy.shows_details
    assert policy.keep_runs == 0


@pytest.mark.parametrize("address", ["", "0.0.0.0", "::", "192.168.1.5", "example.org"])
def test_a_server_reachable_by_others_is_safe_by_default(address):
    """Issue 11: with no AIGC_TRAINING a public server let anyone train and probe server paths."""
    policy = load_policy(env={}, address=address)
    assert policy.training == "off" and not policy.training_visible
    assert policy.hosted and not policy.allows_server_paths and not policy.shows_details


@pytest.mark.parametrize("address", ["localhost", "127.0.0.1", "127.0.1.1", "::1", "[::1]"])
def test_loopback_addresses(address):
    assert hosting.is_loopback(address)


def test_training_on_explicitly_on_a_public_server_is_still_hosted():
    policy = load_policy(env={"AIGC_TRAINING": "on"}, address="0.0.0.0")
    assert policy.training == "on" and policy.hosted and not policy.allows_server_paths
    assert policy.cooldown_s == hosting.HOSTED_COOLDOWN_S > 0
    assert policy.keep_runs == hosting.HOSTED_KEEP_RUNS > 0 and policy.min_free_mb == hosting.HOSTED_MIN_FREE_MB


def test_password_mode_on_loopback_hides_details_too():
    policy = load_policy(env={"AIGC_TRAINING": "password", "AIGC_TRAINING_PASSWORD": "x"}, address="127.0.0.1")
    assert policy.hosted and not policy.allows_server_paths and policy.cooldown_s > 0 and policy.keep_runs > 0


def test_retention_settings_from_env():
    policy = load_policy(env={"AIGC_TRAINING": "off", "AIGC_KEEP_RUNS": "3", "AIGC_MIN_FREE_MB": "50"}, address="")
    assert policy.keep_runs == 3 and policy.min_free_mb == 50
    bad = load_policy(env={"AIGC_KEEP_RUNS": "-1"}, address="")
    assert bad.keep_runs == hosting.HOSTED_KEEP_RUNS and "AIGC_KEEP_RUNS" in bad.notices[0]


def test_server_address_comes_from_streamlit_config():
    """The repository's .streamlit/config.toml binds localhost, so `streamlit run app.py` is local."""
    import tomllib

    from aigc.settings import ROOT

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert hosting.is_loopback(config["server"]["address"])


@pytest.mark.parametrize("message, leaked", [
    ("another training job is running (pid 4242, /srv/app/runs/run-20250101-000000)", ["4242", "/srv"]),
    ("OSError: [Errno 28] No space left on device: '/srv/app/runs/run-1/ckpt/ckpt-3.index'", ["/srv", "runs/"]),
    ("a training job is already running (run-1, pid 77); one job at a time", ["77"]),
])
def test_visitor_message_hides_paths_and_pids_when_hosted(message, leaked):
    hosted = hosting.visitor_message(message, Policy(loopback=False))
    assert not any(part in hosted for part in leaked), hosted
    assert "\n" not in hosting.visitor_message("line one\nTraceback...", Policy(loopback=False))
    assert hosting.visitor_message(message, Policy()) == message  # the local app shows everything


def test_modes_from_env_and_secrets_win_over_env():
    assert load_policy(env={"AIGC_TRAINING": "OFF"}).training == "off"
    assert not load_policy(env={"AIGC_TRAINING": "off"}).training_visible
    policy = load_policy(env={"AIGC_TRAINING": "on"},
                         secrets={"AIGC_TRAINING": "password", "AIGC_TRAINING_PASSWORD": "s3cret"})
    assert policy.needs_password and policy.password == "s3cret"
    assert policy.cooldown_s == hosting.HOSTED_COOLDOWN_S


@pytest.mark.parametrize("env, notice", [
    ({"AIGC_TRAINING": "maybe"}, "not one of"),
    ({"AIGC_TRAINING": "password"}, "PASSWORD is empty"),
])
def test_bad_mode_turns_training_off_with_a_notice(env, notice):
    policy = load_policy(env=env, address="localhost")
    assert policy.training == "off" and notice in policy.notices[0]


@pytest.mark.parametrize("text", ["-1", "0", "1e9", "nan", "inf", "ten", "2.5"])
def test_bad_max_epochs_falls_back(text):
    policy = load_policy(env={"AIGC_MAX_EPOCHS": text})
    assert policy.max_epochs == hosting.DEFAULT_MAX_EPOCHS and "AIGC_MAX_EPOCHS" in policy.notices[0]


def test_caps_and_cooldown_from_env():
    policy = load_policy(env={"AIGC_MAX_EPOCHS": "3", "AIGC_COOLDOWN_S": "12.5"})
    assert policy.max_epochs == 3 and policy.cooldown_s == 12.5
    assert load_policy(env={"AIGC_COOLDOWN_S": "-5"}, address="localhost").cooldown_s == 0  # local: no cooldown


def test_password_uses_exact_match_only():
    policy = Policy(training="password", password="correct horse")
    assert password_ok("correct horse", policy)
    for wrong in ("", None, "correct hors", "correct horse ", 123):
        assert not password_ok(wrong, policy)
    assert not password_ok("", Policy(training="password", password=""))


@pytest.mark.parametrize("value", [-1, 0, 10**9, float("nan"), float("inf"), "text", None, 2.5, 11])
def test_clamp_epochs_rejects_bad_values(value):
    epochs, problem = clamp_epochs(value, Policy(max_epochs=10))
    assert epochs is None and "between 1 and 10" in problem


def test_clamp_epochs_accepts_in_range():
    assert clamp_epochs(10, Policy(max_epochs=10)) == (10, None)
    assert clamp_epochs("3", Policy(max_epochs=10)) == (3, None)


@pytest.mark.parametrize("content, expected", [
    (None, {}),  # no secrets file is not an error
    ('AIGC_TRAINING = "password"\nAIGC_TRAINING_PASSWORD = "pw"\nOTHER = "x"\n',
     {"AIGC_TRAINING": "password", "AIGC_TRAINING_PASSWORD": "pw"}),
    ("this is [not toml", {}),  # a broken file must not take the page down
])
def test_streamlit_secrets_keeps_only_aigc_keys(tmp_path, monkeypatch, content, expected):
    import streamlit as st
    from streamlit import config

    from aigc.app import frame
    from streamlit.runtime.secrets import Secrets

    path = tmp_path / "secrets.toml"
    if content is not None:
        path.write_text(content)
    previous = config.get_option("secrets.files")
    config.set_option("secrets.files", [str(path)])
    monkeypatch.setattr(st, "secrets", Secrets())
    try:
        assert frame.streamlit_secrets() == expected
    finally:
        config.set_option("secrets.files", previous)
