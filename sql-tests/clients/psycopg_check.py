"""psycopg 3 against weir: parameters in both binary and text form,
server-side prepared statements, client-side literals, COPY both ways,
transactions with savepoints, DEALLOCATE after DDL, and uuid, jsonb, time
and array columns read back as Python's own types. Exits non-zero on the
first result that differs from PostgreSQL's."""

import datetime
import decimal
import sys
import uuid

from psycopg.types.json import Jsonb

import psycopg

URL = f"host=127.0.0.1 port={sys.argv[1]} user=weir dbname=weir"


def main():
    with psycopg.connect(URL, autocommit=True) as conn:
        cur = conn.cursor()
        cur.execute(
            "CREATE TABLE orders (id INT PRIMARY KEY, customer TEXT, amount NUMERIC(12,2),"
            " placed TIMESTAMP, weight DOUBLE PRECISION, paid BOOLEAN)"
        )
        for i in range(8):
            cur.execute(
                "INSERT INTO orders VALUES (%s, %s, %s, %s, %s, %s)",
                (i, f"O'Brien {i}", decimal.Decimal("12.50") + i,
                 datetime.datetime(2024, 1, 1, 0, 0, i), 1.5 * i, i % 2 == 0),
                prepare=i >= 4,
            )
        cur.execute("SELECT * FROM orders WHERE id = %s", (1,), binary=True)
        assert cur.fetchone() == (1, "O'Brien 1", decimal.Decimal("13.50"),
                                  datetime.datetime(2024, 1, 1, 0, 0, 1), 1.5, False)
        cur.execute("SELECT count(*), sum(amount) FROM orders WHERE id > %s", (2,))
        assert cur.fetchone() == (5, decimal.Decimal("87.50")), "aggregate"

        literal = psycopg.ClientCursor(conn)
        literal.execute("SELECT %s, %s, %s", ("it's", decimal.Decimal("1234567890123456789.0123456789"), None))
        assert literal.fetchone() == ("it's", decimal.Decimal("1234567890123456789.0123456789"), None)

        with cur.copy("COPY orders (id, customer, amount, placed, weight, paid) FROM STDIN") as copy:
            for i in range(100, 105):
                copy.write_row((i, "copied", decimal.Decimal("1.25"), datetime.datetime(2024, 2, 1), 2.0, True))
        cur.execute("SELECT count(*), sum(amount) FROM orders")
        assert cur.fetchone() == (13, decimal.Decimal("134.25")), "after COPY FROM"
        with cur.copy("COPY (SELECT id, customer FROM orders WHERE id >= 100 ORDER BY id) TO STDOUT") as copy:
            rows = [row for row in copy.rows()]
        assert rows == [(str(i), "copied") for i in range(100, 105)], rows

        cur.execute("CREATE TABLE scratch (a INT)")
        cur.execute("DROP TABLE scratch")
        cur.execute("DEALLOCATE ALL")
        cur.execute("SELECT id FROM orders WHERE id = %s", (3,), prepare=True)
        assert cur.fetchone() == (3,)

    with psycopg.connect(URL) as conn:
        cur = conn.cursor()
        cur.execute("INSERT INTO orders (id, customer) VALUES (200, 'rolled back')")
        conn.rollback()
        cur.execute("SELECT count(*) FROM orders WHERE id = 200")
        assert cur.fetchone() == (0,), "ROLLBACK kept the row"
        with conn.transaction():
            cur.execute("INSERT INTO orders (id, customer) VALUES (201, 'kept')")
            try:
                with conn.transaction():
                    cur.execute("INSERT INTO orders (id, customer) VALUES (202, 'to savepoint')")
                    raise LookupError
            except LookupError:
                pass
        cur.execute("SELECT id FROM orders WHERE id > 200 ORDER BY id")
        assert cur.fetchall() == [(201,)], "savepoint"
        conn.commit()
        try:
            cur.execute("INSERT INTO orders (id) VALUES (201)")
            raise AssertionError("a duplicate key was accepted")
        except psycopg.errors.UniqueViolation:
            conn.rollback()
        typed_values(conn)
    print("psycopg", psycopg.__version__, "ok")


def typed_values(conn):
    """uuid, jsonb, time and array columns, written with client-side
    literals and with parameters, come back as psycopg's Python types."""
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute(
        "CREATE TABLE things (id INT PRIMARY KEY, ref UUID, doc JSONB, at TIME, tags TEXT[], sizes INT[])"
    )
    ref = uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    literal = psycopg.ClientCursor(conn)
    literal.execute(
        "INSERT INTO things VALUES (%s, %s, %s, %s, %s, %s)",
        (1, ref, Jsonb({"b": [1, 2], "a": "x"}), datetime.time(12, 30, 5), ["red", "dark blue"], [3, None]),
    )
    cur.execute("SELECT ref, doc, at, tags, sizes FROM things WHERE id = 1")
    assert cur.fetchone() == (ref, {"a": "x", "b": [1, 2]}, datetime.time(12, 30, 5),
                              ["red", "dark blue"], [3, None]), "typed values from literals"
    cur.execute("SELECT doc ->> 'a', doc -> 'b', tags[2] FROM things WHERE id = %s", (1,), binary=True)
    assert cur.fetchone() == ("x", [1, 2], "dark blue"), "json operators"



main()
