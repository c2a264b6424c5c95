"""The entry point: /healthz, settings from the environment, the CLI's commands, README documents every setting."""

from click.testing import CliRunner

from app import create_app
from dashboard.settings import Settings
from data import store
from tests.paths import ROOT


def _app(tmp_path):
    settings = Settings.from_env({}, database_url=f"sqlite:///{tmp_path / 'app.db'}", live=False, build_demo=False)
    return create_app(settings, testing=True)


def test_healthz_reports_counts(tmp_path):
    client = _app(tmp_path).server.test_client()
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["counts"] == {"grids": 0, "incidents": 0, "open_incidents": 0}


def test_healthz_is_not_ok_when_the_database_is_unreachable(tmp_path):
    app = _app(tmp_path)
    assert app.server.test_client().get("/healthz").status_code == 200  # healthy, then the database goes away
    deps = app.server.extensions["citybrain"]
    deps.engine = store.make_engine("postgresql://postgres@127.0.0.1:1/nowhere", connect_args={"connect_timeout": 1})
    response = app.server.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "error"


def test_settings_come_from_prefixed_environment_variables():
    settings = Settings.from_env({"CITYBRAIN_PORT": "9000", "CITYBRAIN_LIVE": "false", "CITYBRAIN_LANG": "zh"})
    assert (settings.port, settings.live, settings.lang) == (9000, False, "zh")
    assert Settings.from_env({}).timezone == "Asia/Shanghai"


def test_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name for name, _, _ in Settings.documented() if name not in readme]
    assert not missing, f"README does not document {missing}"


def test_cli_lists_the_commands():
    from app import cli

    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "demo", "import-boundaries", "import-incidents", "simulate"):
        assert command in result.output
