"""asyncpg against weir: binary parameters and results for each scalar
type, executemany and transactions. (copy_records_to_table sends binary
COPY, and arrays need asyncpg's type introspection query: both open.)"""

import asyncio
import datetime
import decimal
import sys

import asyncpg


async def main(port):
    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="weir", database="weir")
    await conn.execute(
        "CREATE TABLE readings (id INT PRIMARY KEY, label TEXT, value NUMERIC(12,2), at TIMESTAMP,"
        " at_tz TIMESTAMPTZ, day DATE, ratio FLOAT8, big BIGINT, ok BOOLEAN)"
    )
    utc = datetime.timezone.utc
    rows = [
        (i, f"r{i}", decimal.Decimal("3.10") * i, datetime.datetime(2024, 1, 1, 1, 2, 3),
         datetime.datetime(2024, 1, 1, 12, tzinfo=utc), datetime.date(2024, 3, i + 1), i / 4,
         10**12 + i, i % 2 == 1)
        for i in range(5)
    ]
    await conn.executemany("INSERT INTO readings VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", rows)
    fetched = await conn.fetch("SELECT * FROM readings WHERE id >= $1 ORDER BY id", 3)
    assert [tuple(r) for r in fetched] == rows[3:], fetched
    assert await conn.fetchval("SELECT sum(value) FROM readings") == decimal.Decimal("31.00")
    assert await conn.fetchval("SELECT label FROM readings WHERE day = $1", datetime.date(2024, 3, 3)) == "r2"

    assert await conn.fetchval("SELECT count(*) FROM readings") == 5

    async with conn.transaction():
        await conn.execute("INSERT INTO readings (id) VALUES (20)")
    try:
        async with conn.transaction():
            await conn.execute("INSERT INTO readings (id) VALUES (21)")
            raise LookupError
    except LookupError:
        pass
    ids = [r["id"] for r in await conn.fetch("SELECT id FROM readings WHERE id >= 20")]
    assert ids == [20], ids
    await conn.close()
    print("asyncpg", asyncpg.__version__, "ok")


asyncio.run(main(int(sys.argv[1])))
