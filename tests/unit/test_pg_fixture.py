import asyncpg


async def test_fresh_database_is_empty_and_writable(fresh_database):
    conn = await asyncpg.connect(fresh_database)
    try:
        await conn.execute("create table t (x int)")
        await conn.execute("insert into t values (1)")
        assert await conn.fetchval("select count(*) from t") == 1
    finally:
        await conn.close()
