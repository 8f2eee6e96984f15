"""The compose stack stays true to the code, checked without Docker.

docker-compose.yml, Dockerfile, .dockerignore, .env.example and docs/deploy.md are read and
held against the settings class, the `reactor` command, pyproject.toml and the README.
"""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

import cli
import worker
from core.settings import REACTION_URL_PREFIX, SENDGRID_TEMPLATE_PREFIX, Settings
from core.temporal import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
REACTOR_SERVICES = ("reactor-setup", "reactor-api", "reactor-worker")
DOCKERFILE = (ROOT / "Dockerfile").read_text()
DOCKERIGNORE = (ROOT / ".dockerignore").read_text()
ENV_EXAMPLE = (ROOT / ".env.example").read_text()
DEPLOY = (ROOT / "docs" / "deploy.md").read_text()
README = (ROOT / "README.md").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# Compose refuses to start without these.
REQUIRED = {"WEBHOOK_SECRET", "POSTGRES_PASSWORD", "REACTOR_ENCRYPTION_KEYS"}
# Where the stack means to differ from the app's own default.
COMPOSE_DEFAULTS = {
    "TEMPORAL_ADDRESS": "temporal:7233",
    # The stack's own PostgreSQL, with the password .env already holds.
    "INTAKE_DATABASE_URL": "postgresql+asyncpg://temporal:"
    "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}@postgresql:5432/reactor_intake",
}
# Paths of files inside the containers: they come with a mount, in an override file
# (docs/deploy.md), and are never passed empty from .env (an empty path is not "unset").
MOUNTED = {"TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_KEY_PATH"}
ONE_SHOT_CONDITION = "service_completed_successfully"
CONDITIONS = {"service_healthy", ONE_SHOT_CONDITION}

# ${VAR}, ${VAR:-default}, ${VAR:?message}; `$$` is Compose's escaped dollar. A default may
# hold one reference itself (${A:-x${B:?m}y}).
REFERENCE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:\$\{[^}]*\}|[^}])*))?\}")


# SENDGRID_TEMPLATE_<KIND>[_<LANG>] is a family of variables: the stack passes on one per
# kind of the first reactions; others are added in an override file (docs/deploy.md).
TEMPLATE_FAMILY = {
    "SENDGRID_TEMPLATE_WELCOME",
    "SENDGRID_TEMPLATE_BOOKING_CONFIRMATION",
    "SENDGRID_TEMPLATE_SUPPORT_ALERT",
}


def aliases() -> dict[str, str]:
    """Environment variable -> field name, for every setting (REACTION_URL_<REACTION>: one
    per reaction written with --http, passed in an override file, docs/deploy.md)."""
    found = {}
    for name, field in Settings.model_fields.items():
        alias = str(field.validation_alias)
        if alias.startswith(REACTION_URL_PREFIX):
            assert "REACTION_URL_<REACTION>" in DEPLOY
            continue
        if alias.startswith(SENDGRID_TEMPLATE_PREFIX):
            found.update(dict.fromkeys(TEMPLATE_FAMILY, name))
        else:
            found[alias] = name
    return found


def app_value(variable: str, raw: str | None) -> object:
    """What the app makes of `variable` when the environment holds `raw` (None: unset)."""
    with pytest.MonkeyPatch.context() as env:
        if raw is None:
            env.delenv(variable, raising=False)
        else:
            env.setenv(variable, raw)
        try:
            settings = Settings(_env_file=None)  # type: ignore[call-arg]
        except ValueError as err:  # pydantic's errors, as the app would meet them at start
            return f"the app does not start: {err}"
    return getattr(settings, aliases()[variable])


def environment(service: str) -> dict[str, Any]:
    env = SERVICES[service].get("environment") or {}
    assert isinstance(env, dict), f"{service}: write environment as a mapping"
    return env


def strings(node: object) -> list[str]:
    """Every string of the parsed compose file (keys and values; comments are gone)."""
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in strings(key) + strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return [node] if isinstance(node, str) else []


def references() -> list[tuple[str, str, str]]:
    """(name, operator, default or message) of every ${...} in the compose file."""
    return [
        (m[1], m[2] or "", m[3] or "")
        for text in strings(COMPOSE)
        for m in REFERENCE.finditer(text)
    ]


def compose_default(variable: str) -> str | None:
    """The value Compose gives `variable` while .env leaves it unset (None: none at all)."""
    defaults = {default for name, op, default in references() if name == variable and op == ":-"}
    assert len(defaults) <= 1, f"{variable} has several defaults: {defaults}"
    return defaults.pop() if defaults else None


def published(service: str) -> list[tuple[str, int, int]]:
    """(host ip, host port, container port) of each of a service's ports."""
    result = []
    for port in SERVICES[service].get("ports", []):
        *ip, host, container = str(port).split(":")
        result.append((ip[0] if ip else "0.0.0.0", int(host), int(container)))
    return result


def seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


# --- the services ------------------------------------------------------------------------


def documented_services() -> list[str]:
    section = DEPLOY.split("## The services", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z0-9-]+)` \|", section, flags=re.MULTILINE)


def test_the_compose_file_parses_into_services():
    assert isinstance(COMPOSE, dict)
    assert set(REACTOR_SERVICES) <= set(SERVICES)
    assert {"postgresql", "temporal", "temporal-ui"} <= set(SERVICES)


def test_deploy_md_describes_exactly_the_services_of_the_file():
    assert sorted(documented_services()) == sorted(SERVICES)


GLOBAL_VALUE_OPTIONS = {"-f", "--file", "-p", "--project-name", "--profile", "--env-file"}
VALUE_OPTIONS = {"--scale", "-e", "--env", "--entrypoint", "-u", "--user", "-w", "--workdir"}
ONE_SERVICE = {"exec", "run"}
MANY_SERVICES = {"up", "logs", "ps", "restart", "stop", "start", "build", "pull", "rm", "kill"}


def services_named(command: str) -> list[str]:
    """The services a `docker compose ...` command line names."""
    words = iter(command.split())
    subcommand = next((w for w in words if not w.startswith("-")), "")
    if subcommand not in ONE_SERVICE | MANY_SERVICES:
        return []
    names = []
    for word in words:
        if word in VALUE_OPTIONS:
            value = next(words, "")
            if word == "--scale":
                names.append(value.split("=")[0])
        elif word.startswith("--scale="):
            names.append(word.removeprefix("--scale=").split("=")[0])
        elif not word.startswith("-"):
            names.append(word)
            if subcommand in ONE_SERVICE:
                break
    return names


def compose_commands(text: str) -> list[str]:
    commands = []
    for match in re.finditer(r"docker compose ([^`\n]*)", text):
        words = match[1].split("#", 1)[0].split()  # without a shell comment
        while words and words[0] in GLOBAL_VALUE_OPTIONS:  # -f other.yml ...
            words = words[2:]
        commands.append(" ".join(words))
    return commands


@pytest.mark.parametrize("doc", ["docs/deploy.md", "README.md"])
def test_docker_compose_commands_in_the_docs_name_real_services(doc):
    text = (ROOT / doc).read_text()
    named = {name for command in compose_commands(text) for name in services_named(command)}
    assert named <= set(SERVICES), f"{doc} names services the file lacks: {named - set(SERVICES)}"
    if doc == "docs/deploy.md":
        assert {"reactor-worker", "reactor-api", "reactor-setup"} <= named


def test_services_named_reads_commands_as_compose_does():
    assert services_named("up -d --scale reactor-worker=3") == ["reactor-worker"]
    assert services_named("exec temporal temporal workflow list") == ["temporal"]
    assert services_named("logs -f reactor-api reactor-worker") == ["reactor-api", "reactor-worker"]
    assert services_named("up -d --build") == []
    assert services_named("config") == []


# --- images ------------------------------------------------------------------------------


def image_tag(service: str) -> str:
    image = SERVICES[service]["image"]
    assert ":" in image.rsplit("/", 1)[-1], f"{service}: {image} has no tag"
    return image.rsplit(":", 1)[1]


def test_pulled_images_are_pinned_to_a_version():
    for name, service in SERVICES.items():
        if "build" in service:
            continue
        tag = image_tag(name)
        assert tag != "latest" and re.match(r"\d", tag), f"{name}: pin {service['image']}"


def test_the_admin_tools_are_of_the_servers_release():
    # The admin tools carry the schema files of their release: they must match the server.
    server = image_tag("temporal")
    for name, service in SERVICES.items():
        if service["image"].startswith("temporalio/admin-tools:"):
            assert image_tag(name).split("-")[0] == server, name


def test_the_reactor_services_run_the_image_built_from_this_directory():
    images = set()
    for name in REACTOR_SERVICES:
        build = SERVICES[name]["build"]
        context = build if isinstance(build, str) else build["context"]
        assert context == ".", name
        images.add(SERVICES[name]["image"])
    assert len(images) == 1
    assert not images.pop().endswith(":latest")


# --- commands ----------------------------------------------------------------------------


def check_reactor_command(command: list[str]) -> None:
    """`command` is the console script of pyproject.toml, a subcommand, and its options."""
    scripts = PYPROJECT["project"]["scripts"]
    assert command[0] in scripts, f"{command[0]} is not a console script of pyproject.toml"
    assert scripts[command[0]] == "cli:main" and callable(cli.main)
    commands = typer.main.get_command(cli.app).commands  # type: ignore[attr-defined]
    assert command[1] in commands, f"`reactor {command[1]}` does not exist"
    options = {opt for param in commands[command[1]].params for opt in param.opts}
    for word in command[2:]:
        if word.startswith("-"):
            assert word in options, f"`reactor {command[1]}` has no option {word}"


def test_the_reactor_services_run_real_reactor_commands():
    for name in REACTOR_SERVICES:
        check_reactor_command(SERVICES[name]["command"])
    assert [SERVICES[n]["command"][1] for n in REACTOR_SERVICES] == ["setup", "api", "worker"]


def test_the_worker_is_given_time_to_finish_in_flight_activities():
    grace = seconds(SERVICES["reactor-worker"]["stop_grace_period"])
    assert grace > worker.GRACEFUL_SHUTDOWN.total_seconds()


# --- environment -------------------------------------------------------------------------


def test_the_reactor_services_are_given_only_real_settings():
    known = set(aliases())
    for name in REACTOR_SERVICES:
        unknown = set(environment(name)) - known
        assert not unknown, f"{name}: not settings of core/settings.py: {unknown}"


def test_every_setting_reaches_a_reactor_service():
    given = {variable for name in REACTOR_SERVICES for variable in environment(name)}
    missing = set(aliases()) - MOUNTED - given
    assert not missing, f"add these settings to a reactor service in docker-compose.yml: {missing}"
    assert not MOUNTED & given
    for variable in MOUNTED:
        assert variable in DEPLOY, f"docs/deploy.md must say how to set {variable}"


def test_each_reactor_service_is_given_what_it_reads():
    connection = {
        v for v in aliases() if v.startswith("TEMPORAL_") and v not in MOUNTED | {"TEMPORAL_UI_URL"}
    }
    for name in REACTOR_SERVICES:
        assert connection | {"REACTOR_TASK_QUEUE"} <= set(environment(name)), name
    webhook = {v for v in aliases() if v.startswith("WEBHOOK_")}
    assert webhook <= set(environment("reactor-api"))
    assert "REACTOR_NAMESPACE_RETENTION_DAYS" in environment("reactor-setup")
    assert environment("reactor-api")["LOG_FORMAT"] == "${LOG_FORMAT:-json}"


def test_a_setting_left_out_of_env_gets_the_apps_own_default():
    for name in REACTOR_SERVICES:
        for variable, value in environment(name).items():
            if value is None:  # given without a value: from .env, else unset
                continue
            match = REFERENCE.fullmatch(str(value))
            assert match and match[1] == variable, f"{name}: {variable} must come from ${{...}}"
            operator, default = match[2] or "", match[3] or ""
            if operator == ":?":
                assert variable in REQUIRED, f"{name}: {variable} is not a required setting"
            elif variable in COMPOSE_DEFAULTS:
                assert default == COMPOSE_DEFAULTS[variable], variable
            else:
                assert operator == ":-", f"{name}: give {variable} a default: ${{{variable}:-...}}"
                assert app_value(variable, default) == app_value(variable, None), (
                    f"{name}: ${{{variable}:-{default}}} is not the app's default"
                )


def test_a_variable_has_one_default_everywhere():
    for name, _, _ in references():
        compose_default(name)


def test_required_secrets_must_be_set():
    for name, operator, message in references():
        if name in REQUIRED:
            assert operator == ":?" and ".env" in message, f"write ${{{name}:?set {name} in .env}}"
    assert environment("reactor-api")["WEBHOOK_SECRET"].startswith("${WEBHOOK_SECRET:?")


def test_no_secret_is_written_into_the_file():
    secret = re.compile(r"PASSWORD|PWD|SECRET|TOKEN|API_KEY|WEBHOOK_URL")
    for name, service in SERVICES.items():
        for variable, value in (service.get("environment") or {}).items():
            if secret.search(variable):
                assert value is None or REFERENCE.fullmatch(str(value)), f"{name}: {variable}"


def test_every_dollar_is_a_reference_or_escaped():
    # A lone `$name` would be replaced by Compose (with nothing), not seen by the shell.
    token = re.compile(r"\$\$|\$\{[A-Z_][A-Z0-9_]*(?::?[-?][^}]*)?\}|\$")
    for text in strings(COMPOSE):
        lone = [t.start() for t in token.finditer(text) if t[0] == "$"]
        assert not lone, f"write $$ for the shell's $ in: {text[: lone[0] + 20]!r}"


# --- start order -------------------------------------------------------------------------


def test_depends_on_waits_for_health_or_completion():
    for name, service in SERVICES.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for target, how in depends.items():
            assert target in SERVICES, f"{name} depends on unknown {target}"
            assert how["condition"] in CONDITIONS, f"{name} -> {target}"
            if how["condition"] == "service_healthy":
                check = SERVICES[target].get("healthcheck", {})
                assert check.get("test") and not check.get("disable"), f"{target}: no healthcheck"
            else:
                assert SERVICES[target].get("restart") == "no", f"{target} is not a one-shot"


def test_one_shots_run_once_and_the_rest_restart():
    one_shots = {
        target
        for service in SERVICES.values()
        for target, how in service.get("depends_on", {}).items()
        if how["condition"] == ONE_SHOT_CONDITION
    }
    assert one_shots == {"temporal-schema", "temporal-namespace", "reactor-setup"}
    for name, service in SERVICES.items():
        expected = "no" if name in one_shots else "unless-stopped"
        assert service.get("restart") == expected, name


def test_the_api_and_the_worker_start_after_setup_on_a_healthy_temporal():
    for name in ("reactor-api", "reactor-worker"):
        depends = SERVICES[name]["depends_on"]
        assert depends["reactor-setup"]["condition"] == ONE_SHOT_CONDITION
        assert depends["temporal"]["condition"] == "service_healthy"


def test_the_schema_job_prepares_the_databases_the_server_uses():
    script = " ".join(SERVICES["temporal-schema"]["command"])
    server = environment("temporal")
    assert server["DB"] == "postgres12"
    for database in (server["DBNAME"], server["VISIBILITY_DBNAME"]):
        assert re.search(rf"\b{database}\b", script), database
    for step in ("temporal-sql-tool", "setup-schema", "update-schema", "postgresql/v12"):
        assert step in script


def test_the_namespace_job_creates_the_namespace_reactor_uses():
    namespace = environment("temporal-namespace")["TEMPORAL_NAMESPACE"]
    assert namespace == environment("reactor-setup")["TEMPORAL_NAMESPACE"]
    assert "temporal operator namespace create" in " ".join(
        SERVICES["temporal-namespace"]["command"]
    )


# --- ports -------------------------------------------------------------------------------


def readme_port(pattern: str) -> int:
    match = re.search(pattern, README)
    assert match, pattern
    return int(match[1])


def test_the_api_port_agrees_with_the_readme_command_and_healthcheck():
    port = readme_port(r"127\.0\.0\.1:(\d+)/webhooks/likemagic")
    command = SERVICES["reactor-api"]["command"]
    container_port = int(command[command.index("--port") + 1])
    assert (port, container_port) in [(host, c) for _, host, c in published("reactor-api")]
    check = " ".join(SERVICES["reactor-api"]["healthcheck"]["test"])
    assert f"http://127.0.0.1:{container_port}/healthz" in check
    assert f":{port}/webhooks/likemagic" in DEPLOY or f"<host>:{port}" in DEPLOY


def test_the_ui_port_agrees_with_the_readme():
    port = readme_port(r"Temporal Web UI \| http://127\.0\.0\.1:(\d+)")
    assert published("temporal-ui") == [("127.0.0.1", port, 8080)]
    assert f"127.0.0.1:{port}" in DEPLOY
    assert compose_default("TEMPORAL_UI_URL") == f"http://localhost:{port}"


def test_only_the_webhook_listens_beyond_this_host():
    for name in SERVICES:
        for ip, _, _ in published(name):
            assert ip == "127.0.0.1" or name == "reactor-api", name


# --- the Dockerfile ----------------------------------------------------------------------


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", re.sub(r"^\s*#.*\n", "", DOCKERFILE, flags=re.MULTILINE))
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in text.splitlines()
        if line.strip()
    ]


def copied_sources() -> list[str]:
    sources = []
    for name, args in instructions():
        if name == "COPY":
            words = [w for w in args.split() if not w.startswith("--")]
            assert not args.startswith("--from"), "a COPY from another stage"
            sources += words[:-1]
    return [s.rstrip("/") for s in sources]


def ignored(path: str) -> bool:
    """Whether .dockerignore keeps `path` out of the build context (Docker's rules, simply)."""
    patterns = [p.strip() for p in DOCKERIGNORE.splitlines() if p.strip() and p[0] != "#"]
    parts = path.split("/")
    result = False
    for pattern in patterns:
        keep = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        if pattern.startswith("**/"):
            candidates = ["/".join(parts[i:j]) for j in range(1, len(parts) + 1) for i in range(j)]
            pattern = pattern[3:]
        else:
            candidates = prefixes
        if any(fnmatch.fnmatchcase(c, pattern) for c in candidates):
            result = not keep
    return result


def test_the_dockerfile_copies_sources_that_exist_and_reach_the_context():
    for source in copied_sources():
        path = ROOT / source
        assert path.exists(), f"COPY {source}: not in the repository"
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            relative = file.relative_to(ROOT).as_posix()
            if "__pycache__" in relative:
                continue
            assert not ignored(relative), f"COPY {source}: .dockerignore excludes {relative}"


def test_the_image_holds_everything_pyproject_installs():
    setuptools = PYPROJECT["tool"]["setuptools"]
    needed = {"pyproject.toml", PYPROJECT["project"]["readme"]}
    needed |= set(setuptools["packages"]) | {f"{m}.py" for m in setuptools["py-modules"]}
    assert needed <= set(copied_sources())
    for package, globs in setuptools.get("package-data", {}).items():
        for pattern in globs:
            assert list((ROOT / package).glob(pattern)), f"{package}/{pattern}"


def test_the_image_holds_the_files_settings_default_to():
    # Relative paths are relative to the working directory, the app's folder in the image.
    copied = set(copied_sources())
    for variable, field in aliases().items():
        default = Settings.model_fields[field].get_default(call_default_factory=True)
        if isinstance(default, Path) and (ROOT / default).is_file():
            assert any(
                default.as_posix() == s or default.as_posix().startswith(f"{s}/") for s in copied
            ), f"{variable} defaults to {default}, which the image lacks"


def test_the_image_runs_the_reactor_script_as_a_user_on_python_311_slim():
    found = instructions()
    assert found[0] == ("FROM", "python:3.11-slim")
    users = [args for name, args in found if name == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    runs = " ".join(args for name, args in found if name == "RUN")
    assert "pip install ." in runs and "[dev]" not in runs
    (cmd,) = [json.loads(args) for name, args in found if name == "CMD"]
    check_reactor_command(cmd)
    assert cmd == SERVICES["reactor-api"]["command"]
    assert not [args for name, args in found if name == "ENTRYPOINT"]
    assert ignored(".env") and ignored(".venv/bin/python") and not ignored("README.md")


# --- .env.example ------------------------------------------------------------------------


def example_lines() -> dict[str, tuple[bool, str]]:
    """Variable -> (commented out, value) of each assignment in .env.example."""
    found = {}
    for match in re.finditer(r"^(# )?([A-Z][A-Z0-9_]*)=(.*)$", ENV_EXAMPLE, flags=re.MULTILINE):
        value = match[3].strip()
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        found[match[2]] = (bool(match[1]), value)
    return found


def test_env_example_lists_every_variable_the_stack_reads():
    read = {name for name, _, _ in references()}
    read |= {v for n in REACTOR_SERVICES for v, value in environment(n).items() if value is None}
    assert set(example_lines()) == read


def test_env_example_leaves_the_required_secrets_empty():
    lines = example_lines()
    for variable in REQUIRED:
        assert lines[variable] == (False, ""), f"{variable}= must be there, empty"
    uncommented = {v for v, (commented, _) in lines.items() if not commented}
    assert uncommented == REQUIRED


def test_env_example_shows_the_values_that_apply():
    settings = aliases()
    for variable, (_, value) in example_lines().items():
        if variable in REQUIRED or variable not in settings or not value:
            continue
        expected = app_value(variable, compose_default(variable))
        assert app_value(variable, value) == expected, f".env.example: {variable}={value}"


# --- docs --------------------------------------------------------------------------------


def test_deploy_md_lists_the_search_attributes_temporal_cloud_needs():
    for key in SEARCH_ATTRIBUTES:
        assert f"--search-attribute {key.name}=Keyword" in DEPLOY, key.name
        assert f"`{key.name}`" in DEPLOY, key.name


# --- guest data ----------------------------------------------------------------------------


def test_every_reactor_service_encrypts_with_the_required_keys():
    for name in REACTOR_SERVICES:
        value = environment(name)["REACTOR_ENCRYPTION_KEYS"]
        assert value.startswith("${REACTOR_ENCRYPTION_KEYS:?"), name


def test_the_ui_decodes_through_the_apis_codec_server():
    endpoint = compose_default("TEMPORAL_CODEC_ENDPOINT")
    assert environment("temporal-ui")["TEMPORAL_CODEC_ENDPOINT"].startswith(
        "${TEMPORAL_CODEC_ENDPOINT:-"
    )
    [(_, api_port, _)] = published("reactor-api")
    assert endpoint == f"http://localhost:{api_port}/codec"
    # The API answers CORS for the UI's origin: the URL people open the UI at.
    [(_, ui_port, _)] = published("temporal-ui")
    assert compose_default("TEMPORAL_UI_URL") == f"http://localhost:{ui_port}"
    assert "TEMPORAL_UI_URL" in environment("reactor-api")
    assert "REACTOR_CODEC_TOKEN" in environment("reactor-api")


def test_the_ui_is_reachable_from_this_host_only_and_the_proxy_is_documented():
    assert [ip for ip, _, _ in published("temporal-ui")] == ["127.0.0.1"]
    section = DEPLOY.split("## The Temporal UI", 1)[1].split("\n## ", 1)[0]
    for needed in ("basic_auth", "REACTOR_CODEC_TOKEN", "/codec", "OIDC", "ssh -L"):
        assert needed in section, needed
