import socket

import pytest
from aiohttp import web

from actions.events import CheckEnded
from actions.masking import Masker
from actions.model import Check
from actions.verify import run_check, run_checks

NO_SECRETS = Masker()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def web_server():
    """Base URL of a tiny app: `/` says Ecom OS, `/broken` answers 500."""

    async def home(request):
        return web.Response(text="<title>Ecom OS</title> ready")

    async def broken(request):
        return web.Response(status=500, text="Ecom OS is down")

    app = web.Application()
    app.router.add_get("/", home)
    app.router.add_get("/broken", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def check(check: Check, rendered: str, tmp_path, **options) -> CheckEnded:
    return await run_check(
        check,
        rendered=rendered,
        workdir=tmp_path,
        masker=options.pop("masker", NO_SECRETS),
        **options,
    )


async def test_run_check_passes_on_exit_zero(tmp_path):
    ended = await check(Check(name="Build", run="true"), "echo built", tmp_path)
    assert (ended.name, ended.kind, ended.passed, ended.detail) == (
        "Build",
        "run",
        True,
        "exit status 0",
    )
    assert ended.started_at.tzinfo is not None and ended.ended_at >= ended.started_at


async def test_run_check_fails_with_its_status_and_output(tmp_path):
    ended = await check(
        Check(name="Build", run="x"), "echo 'npm ERR! missing script'; exit 2", tmp_path
    )
    assert not ended.passed
    assert ended.detail == "exited with status 2\nnpm ERR! missing script"


async def test_run_check_times_out(tmp_path):
    ended = await check(Check(name="Slow", run="x", timeout=1.0), "sleep 300", tmp_path)
    assert not ended.passed
    assert "timed out" in ended.detail


async def test_run_check_uses_its_own_workdir(tmp_path):
    (tmp_path / "app").mkdir()
    ended = await check(Check(name="Here", run="x", workdir="app"), "test -d ../app", tmp_path)
    assert ended.passed


async def test_http_check_passes_when_the_page_has_the_text(web_server, tmp_path):
    ended = await check(Check(name="App", http="x", expect="Ecom OS"), web_server, tmp_path)
    assert ended.passed, ended.detail
    assert ended.kind == "http"
    assert ended.detail == "HTTP 200 OK, the page contains 'Ecom OS'"


async def test_http_check_fails_when_the_text_is_missing(web_server, tmp_path):
    ended = await check(Check(name="App", http="x", expect="Welcome"), web_server, tmp_path)
    assert not ended.passed
    assert ended.detail == "HTTP 200 OK, but the page does not contain 'Welcome'"


async def test_http_check_fails_on_a_server_error(web_server, tmp_path):
    ended = await check(
        Check(name="App", http="x", expect="Ecom OS"), f"{web_server}/broken", tmp_path
    )
    assert not ended.passed
    assert ended.detail == "HTTP 500 Internal Server Error"


async def test_http_check_fails_when_nothing_listens(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/"
    ended = await check(Check(name="App", http="x", timeout=10.0), url, tmp_path)
    assert not ended.passed
    assert ended.detail == f"could not connect to {url}: Connection refused"


async def test_sql_check_passes_and_shows_the_value(fresh_database, tmp_path):
    ended = await check(
        Check(name="DB", sql="x", expect="1"), "select 1", tmp_path, default_dsn=fresh_database
    )
    assert ended.passed, ended.detail
    assert (ended.kind, ended.detail) == ("sql", "value 1")


async def test_sql_check_prefers_its_own_dsn(fresh_database, tmp_path):
    unreachable = f"postgresql://nobody@127.0.0.1:{free_port()}/none"
    ended = await check(
        Check(name="DB", sql="x", dsn=fresh_database),
        "select current_database()",
        tmp_path,
        default_dsn=unreachable,
    )
    assert ended.passed, ended.detail


async def test_sql_check_fails_when_the_value_differs(fresh_database, tmp_path):
    ended = await check(
        Check(name="DB", sql="x", expect="42"), "select 41", tmp_path, default_dsn=fresh_database
    )
    assert not ended.passed
    assert ended.detail == "value 41, expected 42"


async def test_sql_check_fails_on_a_bad_query(fresh_database, tmp_path):
    ended = await check(
        Check(name="DB", sql="x"),
        "select count(*) from orders",
        tmp_path,
        default_dsn=fresh_database,
    )
    assert not ended.passed
    assert ended.detail == 'the query failed: relation "orders" does not exist'


async def test_sql_check_fails_clearly_when_the_database_is_unreachable(tmp_path):
    dsn = f"postgresql://app:hunter2pw@127.0.0.1:{free_port()}/ecom_os"
    ended = await check(Check(name="DB", sql="x", dsn=dsn, timeout=20.0), "select 1", tmp_path)
    assert not ended.passed
    assert ended.detail.startswith("could not connect to the database:")
    assert "hunter2pw" not in ended.detail


async def test_sql_check_without_any_dsn_fails(tmp_path):
    ended = await check(Check(name="DB", sql="x"), "select 1", tmp_path)
    assert not ended.passed
    assert "no database to query" in ended.detail


async def test_run_checks_emits_each_result_in_order(web_server, tmp_path):
    events = []

    async def sink(event):
        events.append(event)

    checks = [
        (Check(name="ok", run="x"), "true"),
        (Check(name="fails", run="x"), "false"),
        (Check(name="page", http="x"), web_server),
    ]
    results = await run_checks(checks, workdir=tmp_path, masker=NO_SECRETS, on_event=sink)

    assert results == events
    assert [(r.name, r.passed) for r in results] == [("ok", True), ("fails", False), ("page", True)]


async def test_details_are_masked(tmp_path):
    masker = Masker(["s3cret-value"])
    ended = await check(
        Check(name="Leaky", run="x"), "echo s3cret-value; exit 1", tmp_path, masker=masker
    )
    assert "s3cret-value" not in ended.detail


async def test_sql_check_times_out_on_a_slow_query(fresh_database, tmp_path):
    ended = await check(
        Check(name="DB", sql="x", timeout=1.0),
        "select pg_sleep(60)",
        tmp_path,
        default_dsn=fresh_database,
    )
    assert not ended.passed
    assert ended.detail == "no answer from the database within 1s"
    assert ended.duration < 30
