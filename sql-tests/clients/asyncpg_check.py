"""asyncpg against weir: binary parameters and results for each scalar
type, executemany, transactions, binary COPY both ways
(copy_records_to_table, copy_from_query), and array columns and
parameters, which asyncpg decodes only after its type introspection query
(a recursive CTE with correlated subqueries, and `$1::oid[]`) has run."""

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

    # Binary COPY in: every column type of the table, NULLs, 26 digits.
    copied = [
        (100 + i, f"c{i}", decimal.Decimal("12345678.25") * (i - 1),
         datetime.datetime(2023, 12, 31, 23, 59, 59, 500000), datetime.datetime(2000, 1, 1, tzinfo=utc),
         datetime.date(1999, 12, 31), -i / 3, -(10**15) * i, i == 0)
        for i in range(3)
    ] + [(200, None, None, None, None, None, None, None, None)]
    result = await conn.copy_records_to_table("readings", records=copied)
    assert result == "COPY 4", result
    back = await conn.fetch("SELECT * FROM readings WHERE id >= 100 ORDER BY id")
    assert [tuple(r) for r in back] == copied, back

    # Binary COPY out, read back by asyncpg's own decoder.
    out = []
    await conn.copy_from_query(
        "SELECT id, label, value FROM readings WHERE id >= 100 ORDER BY id",
        output=lambda chunk: out.append(chunk) or asyncio.sleep(0), format="binary",
    )
    data = b"".join(out)
    assert data.startswith(b"PGCOPY\n\xff\r\n\x00"), data[:20]
    assert data.endswith(b"\xff\xff"), data[-4:]
    assert b"c1" in data and data.count(b"\x00\x03") >= 4, data

    # Arrays: int[] and text[] columns, array parameters both ways.
    await conn.execute("CREATE TABLE tagged (id INT PRIMARY KEY, xs INT[], tags TEXT[])")
    await conn.execute("INSERT INTO tagged VALUES (1, '{1,2,3}', '{a,\"b c\"}')")
    await conn.execute("INSERT INTO tagged VALUES ($1, $2, $3)", 2, [4, None], ["d", None])
    tagged = [tuple(r) for r in await conn.fetch("SELECT * FROM tagged ORDER BY id")]
    assert tagged == [(1, [1, 2, 3], ["a", "b c"]), (2, [4, None], ["d", None])], tagged
    picked = await conn.fetch("SELECT id FROM tagged WHERE id = any($1::int[])", [2, 7])
    assert [r["id"] for r in picked] == [2], picked
    assert await conn.fetchval("SELECT xs[2] FROM tagged WHERE id = 1") == 2
    await conn.close()
    print("asyncpg", asyncpg.__version__, "ok")


asyncio.run(main(int(sys.argv[1])))
