"""The Dockerfile's contract, checked by reading it (no Docker engine runs in CI)."""
from __future__ import annotations

import fnmatch
import json
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


def instructions(text: str | None = None) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction of the Dockerfile (or text): continuation lines joined, comments dropped.

    As Docker reads it: a line whose first non-blank character is '#' is a comment, also inside a continued
    instruction; '#' anywhere else is part of the instruction.
    """
    logical, current = [], ""
    for raw in (DOCKERFILE.read_text() if text is None else text).splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    out = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def comments() -> str:
    """The Dockerfile's comment lines (its documentation), without their '#'."""
    return "\n".join(line.strip()[1:] for line in DOCKERFILE.read_text().splitlines() if line.strip().startswith("#"))


def shell_commands(keyword: str = "RUN") -> list[list[str]]:
    """Every simple command of the shell-form instructions of this keyword, as argv (split at &&, ||, ; and if/then)."""
    commands = []
    for rest in args_of(keyword):
        rest = rest.split(" CMD ", 1)[-1] if keyword == "HEALTHCHECK" else rest  # after the options
        lexer = shlex.shlex(rest, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        command = []
        for token in lexer:
            if token in (";", "&&", "||", "|", "&") or (not command and token in ("if", "then", "else", "fi")):
                if command:
                    commands.append(command)
                command = []
            else:
                command.append(token)
        if command:
            commands.append(command)
    return commands


def test_comments_are_not_instructions():
    """The checks below read instructions only: a comment that mentions USER or useradd satisfies none of them."""
    text = "# USER 1000\nFROM base\nRUN a \\\n  # RUN useradd --uid 1000\n  && b  # not a comment here\n#EXPOSE 8501\n"
    parsed = [(keyword, " ".join(rest.split())) for keyword, rest in instructions(text)]
    assert parsed == [("FROM", "base"), ("RUN", "a && b # not a comment here")]


def args_of(keyword: str) -> list[str]:
    return [rest for kw, rest in instructions() if kw == keyword]


def exec_or_shell(text: str) -> list[str]:
    """The argv of a CMD/ENTRYPOINT in exec (JSON) or shell form."""
    text = text.strip()
    return json.loads(text) if text.startswith("[") else shlex.split(text)


def test_base_image_is_slim_python_pinned_by_digest():
    """Issue 11: the base image was a moving tag; a rebuild could bring other bytes."""
    froms = args_of("FROM")
    assert len(froms) == 1, "one stage is enough"
    image = froms[0].split()[0]
    assert "$" not in image, "no build argument may change a pinned base"
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?@sha256:[0-9a-f]{64}", image), image
    assert "imagetools inspect" in comments() or "RepoDigests" in comments(), "say (in a comment) how to update it"


def env_of_image() -> dict[str, str]:
    pairs = {}
    for rest in args_of("ENV"):
        for item in shlex.split(rest):
            key, _, value = item.partition("=")
            pairs[key] = value
    return pairs


def test_image_is_a_safe_public_demo_by_default():
    """Issue 11: the image shipped without AIGC_TRAINING, so any visitor could train."""
    assert env_of_image().get("AIGC_TRAINING") == "off"
    from aigc.serve.hosting import load_policy

    policy = load_policy(env=env_of_image(), address="0.0.0.0")
    assert not policy.training_visible and policy.hosted and not policy.allows_server_paths


def test_container_stop_is_forwarded_to_the_trainer():
    """Issue 11: nothing forwarded docker stop's SIGTERM to the trainer (its own session): it was SIGKILLed."""
    argv = exec_or_shell(args_of("CMD")[0])
    assert argv[:3] == ["python", "-m", "aigc.serve.supervisor"], argv
    assert args_of("STOPSIGNAL") in ([], ["SIGTERM"])
    assert "--stop-timeout" in comments(), "document docker run --stop-timeout"
    grace = float(env_of_image().get("AIGC_STOP_GRACE_S", "50"))
    assert 0 < grace < 60, "the trainer's share must fit in the documented --stop-timeout 60"
    assert (ROOT / "aigc" / "serve" / "supervisor.py").is_file()


def test_tensorflow_cpu_on_x86_64_with_pins_from_requirements():
    run = " ".join(args_of("RUN"))
    assert "requirements.txt" in run and "x86_64" in run and "uname -m" in run
    installs = [c for c in shell_commands() if c[:2] == ["pip", "install"]]
    assert len(installs) == 1 and installs[0][2] == "-r", installs
    match = re.search(r"sed -E '?s/(.+?)/(.+?)/'", run)
    assert match, "the tensorflow -> tensorflow-cpu rewrite should be a sed over requirements.txt"
    pattern, replacement = match.group(1), match.group(2)
    original = (ROOT / "requirements.txt").read_text().splitlines()
    rewritten = [re.sub(pattern, replacement.replace("\\1", r"\1"), line) for line in original]
    changed = [(a, b) for a, b in zip(original, rewritten) if a != b]
    assert len(changed) == 1, f"exactly the tensorflow pin must change, got {changed}"
    before, after = changed[0]
    assert re.fullmatch(r"tensorflow==[\d.]+", before)
    assert after == before.replace("tensorflow==", "tensorflow-cpu=="), after
    assert all(not line.startswith("tensorflow-cpu") for line in original), "requirements.txt keeps plain tensorflow"


def test_weights_and_code_are_copied_and_exist():
    sources = []
    for rest in args_of("COPY"):
        parts = [p for p in rest.split() if not p.startswith("--")]
        sources += parts[:-1]
    assert any(s.rstrip("/") == "checkpoints" for s in sources), "the shipped weights must be baked in"
    assert any(s.rstrip("/") == "aigc" for s in sources)
    assert "app.py" in [s.lstrip("./") for s in sources]
    missing = [s for s in sources if not (ROOT / s).exists()]
    assert not missing, f"COPY sources missing from the repository: {missing}"
    ignored = ignore_patterns()
    for source in sources:
        assert not is_ignored(source.rstrip("/"), ignored), f"{source} is COPYed but excluded by .dockerignore"


def test_no_download_at_run_time():
    programs = {command[0] for keyword in ("RUN", "HEALTHCHECK") for command in shell_commands(keyword)}
    assert not programs & {"wget", "curl"}, programs
    cmd = " ".join(args_of("CMD") + args_of("ENTRYPOINT"))
    assert "pip" not in cmd and "http" not in cmd


def test_runs_as_non_root_uid_1000():
    users = args_of("USER")
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] in ("1000", "app")
    commands = shell_commands()
    useradd = [c for c in commands if c[0] == "useradd"]
    assert useradd and "--uid" in useradd[0] and useradd[0][useradd[0].index("--uid") + 1] == "1000", useradd
    chown = [c for c in commands if c[0] == "chown"]
    assert any(arg.rstrip("/").endswith("/runs") for c in chown for arg in c[2:]), "the user needs a writable runs/"


def test_port_and_healthcheck():
    assert any("8501" in e.split() for e in args_of("EXPOSE"))
    health = args_of("HEALTHCHECK")
    assert len(health) == 1
    words = shlex.split(health[0])
    check = words[words.index("CMD") + 1:]  # after the options: the command the engine runs
    assert check[:2] == ["python", "-c"], "slim images have neither curl nor wget"
    assert "urllib.request" in check[2] and "/_stcore/health" in check[2]


def test_streamlit_command():
    cmds = args_of("CMD")
    assert len(cmds) == 1 and not args_of("ENTRYPOINT")
    argv = exec_or_shell(cmds[0])[3:]  # after `python -m aigc.serve.supervisor`
    assert argv[:3] == ["streamlit", "run", "app.py"]
    options = dict(zip(argv[3::2], argv[4::2]))
    assert options.get("--server.headless") == "true"
    assert options.get("--server.address") == "0.0.0.0"
    assert options.get("--server.fileWatcherType") == "none"
    assert options.get("--server.port", "8501") == "8501"


def ignore_patterns() -> list[str]:
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def is_ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, simplified: the last matching pattern wins; '!' re-includes."""
    ignored = False
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.lstrip("!").rstrip("/")
        body = body[3:] if body.startswith("**/") else body
        if any(fnmatch.fnmatch(p, body) or fnmatch.fnmatch(p.rsplit("/", 1)[-1], body) for p in prefixes):
            ignored = not negate
    return ignored


@pytest.mark.parametrize("path", ["runs", "runs/x/ckpt", ".git", "aigc/__pycache__", ".pytest_cache",
                                  ".venv", "grid.png", ".streamlit/secrets.toml"])
def test_dockerignore_keeps_local_state_out(path):
    assert is_ignored(path, ignore_patterns()), f"{path} would enter the build context"


@pytest.mark.parametrize("path", ["aigc/engine/trainer.py", "checkpoints", "app.py", "requirements.txt", ".streamlit/config.toml"])
def test_dockerignore_keeps_what_the_image_needs(path):
    assert not is_ignored(path, ignore_patterns())
